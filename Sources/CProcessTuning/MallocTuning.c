// glibc's malloc, tuned before main runs: one arena for a long-running twin (`run`, `agent`).
//
// glibc gives each thread that allocates its own arena (up to 8 per core), and memory freed in one arena
// is never reused by another. A twin's work is one tick at a time on a few threads, so extra arenas only
// hold freed memory. A limit set from Swift comes too late: the Swift runtime's and Dispatch's threads
// have allocated, and made their arenas, before the command's first line. A constructor runs before any
// thread exists. Hubs (`serve`) keep glibc's default: many connections allocate at once there.
// Measured in BENCHMARKS.md ("Memory and CPU of `run`: one malloc arena, the budget held").
#include <malloc.h>
#include <string.h>
#include "CProcessTuning.h"

static int arenaLimit = 0;

// glibc passes constructors the program's arguments.
__attribute__((constructor)) static void hosttwin_tune_malloc(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc < 2 || (strcmp(argv[1], "run") != 0 && strcmp(argv[1], "agent") != 0)) return;
    if (mallopt(M_ARENA_MAX, 1) == 1) arenaLimit = 1;
}

int hosttwin_malloc_arena_limit(void) { return arenaLimit; }

long long hosttwin_heap_in_use(void) {
    struct mallinfo2 m = mallinfo2();
    return (long long)(m.uordblks + m.hblkhd);
}
