// The malloc tuning runs as a constructor before main (MallocTuning.c); this reports what it set.

/// The arena limit the constructor set for this process (1 for `run` and `agent`), or 0 when it set none.
int hosttwin_malloc_arena_limit(void);
