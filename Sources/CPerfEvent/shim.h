// perf_event_open(2) on a kernel tracepoint and its ring buffer: the syscall has no glibc wrapper, and
// the ring's head and tail need acquire/release ordering against the kernel, which Swift cannot spell on
// mapped memory; epoll(7) gathers the per-CPU rings (the Glibc module leaves it out). Debian: linux-libc-dev.
#include <linux/perf_event.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
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
