// Process tuning done by constructors before main: glibc's malloc arenas (MallocTuning.c) and
// fault-around for the program's code (FaultAround.c); these report what they set.

/// Bytes of heap in use (glibc's `mallinfo2`: allocated chunks of every arena, and mmap'd blocks).
long long hosttwin_heap_in_use(void);

/// The arena limit the constructor set for this process (1 for `run` and `agent`), or 0 when it set none.
int hosttwin_malloc_arena_limit(void);

/// How many code and read-only file mappings the constructor registered to be faulted in a page at a
/// time, or 0 when the kernel does not allow it (before Linux 6.7) or `HOSTTWIN_FAULT_AROUND=1` is set.
int hosttwin_fault_around_off(void);

/// Registers the code and read-only file mappings present now (libraries loaded since start-up too) to be
/// faulted in a page at a time; returns how many are registered, 0 when the kernel does not allow it or
/// `HOSTTWIN_FAULT_AROUND=1` is set.
int hosttwin_map_code_page_by_page(void);
