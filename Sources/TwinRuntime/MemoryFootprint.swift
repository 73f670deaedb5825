import Glibc

/// Keeps the resident set of a long-running `run` close to what it uses.
///
/// Start-up runs code that a running twin never runs again (argument parsing, migrations, the first
/// reads of everything), and Linux maps code pages around each page fault ("fault-around", 64 KiB by
/// default). Advising `MADV_DONTNEED` on executable file mappings once start-up is over drops those pages;
/// what runs afterwards faults back in. `MADV_RANDOM` stops readahead on a page-cache miss, but a fault
/// still maps the neighbours already cached: with the binary cached whole, a running twin's resident code
/// is whole 64 KiB blocks (docs/OBSERVATION.md, "Memory of `run`"). Measured in BENCHMARKS.md (RSS of
/// `run` with and without).
public enum MemoryFootprint {
    /// Gives freed heap pages back to the system (after a burst such as sealing the head log).
    public static func releaseFreedMemory() {
        // malloc_trim is a glibc extension outside the Glibc module; look it up.
        typealias MallocTrim = @convention(c) (Int) -> Int32
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
        _ = unsafeBitCast(sym, to: MallocTrim.self)(0)
    }

    public static func limitCodeFaultAround() {
        guard let f = fopen("/proc/self/maps", "r") else { return }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, Int32(line.count), f) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let parts = text.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard parts.count >= 6, parts[1].hasPrefix("r-x"), parts[5].drop(while: { $0 == " " }).hasPrefix("/") else { continue }
            let range = parts[0].split(separator: "-")
            guard range.count == 2, let lo = UInt(range[0], radix: 16), let hi = UInt(range[1], radix: 16), hi > lo,
                  let ptr = UnsafeMutableRawPointer(bitPattern: lo) else { continue }
            // Drop the clean code pages mapped so far (they come back from the page cache when executed),
            // and stop fault-around from mapping neighbours again.
            _ = madvise(ptr, Int(hi - lo), MADV_DONTNEED)
            _ = madvise(ptr, Int(hi - lo), MADV_RANDOM)
        }
    }
}
