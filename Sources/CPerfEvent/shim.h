// perf_event_open(2) on a kernel tracepoint and its ring buffer: the syscall has no glibc wrapper, and
// the ring's head and tail need acquire/release ordering against the kernel, which Swift cannot spell on
// mapped memory; epoll(7) gathers the per-CPU rings (the Glibc module leaves it out); where tracefs is not
// mounted, a thread reads the tracepoint's id and format in a mount namespace of its own. Debian: linux-libc-dev.
#include <linux/perf_event.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline int hosttwin_perf_event_open(struct perf_event_attr *attr, int pid, int cpu, int group, unsigned long flags) {
    return (int)syscall(__NR_perf_event_open, attr, pid, cpu, group, flags);
}

/// Sets a tracepoint filter ("newstate == 1 || ..."); 0 on success.
static inline int hosttwin_perf_set_filter(int fd, const char *filter) {
    return ioctl(fd, PERF_EVENT_IOC_SET_FILTER, filter);
}

static inline uint64_t hosttwin_ring_head(struct perf_event_mmap_page *page) {
    return __atomic_load_n(&page->data_head, __ATOMIC_ACQUIRE);
}

static inline void hosttwin_ring_set_tail(struct perf_event_mmap_page *page, uint64_t tail) {
    __atomic_store_n(&page->data_tail, tail, __ATOMIC_RELEASE);
}

/// Moves the calling thread (not its process) into a mount namespace of its own and makes every mount in it
/// private, so that a mount made there never propagates to the host's namespace: unshare(2) with
/// CLONE_NEWNS, then mount(2) with MS_REC | MS_PRIVATE on "/". 0 on success; -1 when the namespace could not
/// be made (no CAP_SYS_ADMIN), -2 when it was made but its mounts could not be made private (the caller
/// must then mount nothing). Other threads stay where they were.
static inline int hosttwin_enter_private_mounts(void) {
    if (syscall(__NR_unshare, 0x00020000 /* CLONE_NEWNS */) != 0) return -1;
    return mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 ? 0 : -2;
}

/// Mounts tracefs read-only at `target` (in the caller's mount namespace); 0 on success.
static inline int hosttwin_mount_tracefs(const char *target) {
    return mount("nodev", target, "tracefs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
}
