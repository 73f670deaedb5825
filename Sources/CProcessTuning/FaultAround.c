// Fault-around turned off for the program's code, before main runs: a running twin maps the pages of code
// it runs, not the 64 KiB around each.
//
// On a page fault in a file mapping, Linux maps the cached pages around the faulting one too
// ("fault-around", 64 KiB, a system-wide setting). A running twin runs scattered functions of a large
// binary, so its resident code was whole 64 KiB blocks, two or three times the pages it runs
// (docs/OBSERVATION.md, "Memory of `run`"). The kernel skips fault-around in a range registered with
// userfaultfd for write-protection, and since Linux 6.7 (`UFFD_FEATURE_WP_ASYNC`) any mapping can be so
// registered with no thread to serve it: write-protection faults resolve in the kernel, and a read-only
// mapping has none. So each code and read-only mapping of a file is registered before main, and again
// when `run` drops its code pages (libraries loaded since); a read fault then maps its one page from the
// page cache. Older kernels refuse the feature and nothing changes.
// `HOSTTWIN_FAULT_AROUND=1` keeps the kernel's behaviour (for measuring both ways with one binary).
// Measured in BENCHMARKS.md ("Memory of `run`: fault-around off for the code").
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "CProcessTuning.h"

// Older kernel headers (Debian 12's) lack the newer names; the values are the kernel's ABI.
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

static int uffd = -1;       // open for the life of the process: closing it would end the registrations
static int keepFaultAround = 0;
static int registeredAtStart = 0;

// Opens the userfaultfd (the constructor, once, before any thread); -1 when the kernel does not allow
// write-protection of any mapping.
static int openFaultDescriptor(void) {
    // User-mode faults only: allowed without privilege (vm.unprivileged_userfaultfd = 0), and code is
    // fetched in user mode.
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (fd < 0) return -1;
    struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC };
    if (ioctl(fd, UFFDIO_API, &api) != 0 || !(api.features & UFFD_FEATURE_WP_ASYNC)) {
        close(fd);
        return -1;
    }
    return fd;
}

int hosttwin_map_code_page_by_page(void) {
    if (keepFaultAround) return 0;
    int fd = uffd;
    FILE *maps = fopen("/proc/self/maps", "re");
    if (!maps) return 0;
    char line[4096];
    int count = 0;
    while (fgets(line, sizeof line, maps)) {
        unsigned long start, end;
        char perms[8];
        int pathAt = 0;
        // "start-end perms offset dev inode path"
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &start, &end, perms, &pathAt) != 3) continue;
        if (pathAt == 0 || line[pathAt] != '/' || end <= start) continue;
        if (strcmp(perms, "r-xp") != 0 && strcmp(perms, "r--p") != 0) continue;
        // A file written in large writes is cached in folios up to 2 MiB (Linux 6.18 on ext4), and a fault
        // maps a 2 MiB folio whole with one page-table entry whatever the registration; not in a mapping
        // advised against huge pages (measured: 32 MiB resident for 128 reads of a 32 MiB file written in
        // one write, 512 KiB with the advice). Done on older kernels too.
        madvise((void *)start, end - start, MADV_NOHUGEPAGE);
        if (fd < 0) continue;
        // Registering a range again with the same descriptor is allowed (a later call sees the earlier ones).
        struct uffdio_register reg = { .range = { .start = start, .len = end - start }, .mode = UFFDIO_REGISTER_MODE_WP };
        if (ioctl(fd, UFFDIO_REGISTER, &reg) == 0) count += 1;
    }
    fclose(maps);
    return count;
}

__attribute__((constructor)) static void hosttwin_stop_fault_around(void) {
    const char *keep = getenv("HOSTTWIN_FAULT_AROUND");
    keepFaultAround = keep && strcmp(keep, "1") == 0;
    if (!keepFaultAround) uffd = openFaultDescriptor();
    registeredAtStart = hosttwin_map_code_page_by_page();
}

int hosttwin_fault_around_off(void) { return registeredAtStart; }
