// fanotify(7) with file-handle events, and open_by_handle_at(2) to name an event's directory: the
// Glibc module leaves <sys/fanotify.h> out and declares open_by_handle_at only under _GNU_SOURCE, so
// both are called through syscall(2) here. It leaves <sys/epoll.h> out too: one epoll call is here, to wait
// on fanotify's and inotify's descriptors as one. Debian: linux-libc-dev.
#include <linux/fanotify.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

/// open(2)'s O_PATH (GNU-only in <fcntl.h>; the same value on x86-64 and arm64).
static const int hosttwin_o_path = 010000000;

/// The id of the filesystem `path` is on (statfs' `f_fsid`, its eight bytes as fanotify reports them); -1
/// with errno set when it cannot be read.
static inline int hosttwin_fsid(const char *path, uint64_t *fsid) {
    struct statfs fs;
    if (statfs(path, &fs) != 0) return -1;
    memcpy(fsid, &fs.f_fsid, sizeof *fsid);
    return 0;
}

static inline int hosttwin_fanotify_init(unsigned int flags, unsigned int event_flags) {
    return (int)syscall(__NR_fanotify_init, flags, event_flags);
}

/// Adds or removes a mark; `path` is resolved against `dirfd` (AT_FDCWD: the working directory).
static inline int hosttwin_fanotify_mark(int fd, unsigned int flags, unsigned long long mask, int dirfd, const char *path) {
    return (int)syscall(__NR_fanotify_mark, fd, flags, mask, dirfd, path);
}

/// Opens what `handle` (a `struct file_handle` as an event carries it) names on the filesystem of `mount_fd`.
static inline int hosttwin_open_by_handle_at(int mount_fd, const void *handle, int flags) {
    return (int)syscall(__NR_open_by_handle_at, mount_fd, handle, flags);
}

/// A new epoll descriptor (close-on-exec) that is readable while any of the `count` descriptors `fds` is
/// (level-triggered); -1 with errno set when one cannot be added.
static inline int hosttwin_epoll_readable(const int *fds, int count) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return -1;
    for (int i = 0; i < count; i++) {
        struct epoll_event event = { .events = EPOLLIN, .data = { .fd = fds[i] } };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &event) != 0) { close(ep); return -1; }
    }
    return ep;
}
