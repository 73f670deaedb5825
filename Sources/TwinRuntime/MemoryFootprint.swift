import CProcessTuning
import Glibc
import Synchronization

/// Keeps the resident set of a long-running `run` close to what it uses.
///
/// Start-up runs code that a running twin never runs again (argument parsing, migrations, the first
/// reads of everything) and reads data it never reads again (the dynamic linker's tables), and Linux maps
/// code pages around each page fault ("fault-around", 64 KiB by default). Advising `MADV_DONTNEED` on
/// executable and read-only file mappings once start-up is over drops those pages;
/// what runs afterwards faults back in. `MADV_RANDOM` stops readahead on a page-cache miss, but a fault
/// still maps the neighbours already cached: with the binary cached whole, a running twin's resident code
/// was whole 64 KiB blocks (docs/OBSERVATION.md, "Memory of `run`"), until a constructor turned
/// fault-around off for the program's file mappings (`CProcessTuning`, FaultAround.c). Measured in
/// BENCHMARKS.md (RSS of `run` with and without).
public enum MemoryFootprint {
    /// Bytes of heap in use: what the program holds, as opposed to what glibc keeps freed (for benchmarks).
    public static var heapInUse: Int { Int(hosttwin_heap_in_use()) }

    /// Gives freed heap pages back to the system (after a burst such as sealing the head log).
    public static func releaseFreedMemory() {
        _ = mallocTrim?(0)
    }

    /// glibc's `malloc_trim`, outside the Glibc module: looked up once (a lookup walks the dynamic symbol
    /// tables, which ``dropFilePages()`` has dropped since the last seal: 0.02 ms/s of faults when it was
    /// looked up after every seal).
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim")
        .map { unsafeBitCast($0, to: (@convention(c) (Int) -> Int32).self) }

    /// Drops the resident pages of code and read-only data mapped from files; what runs afterwards faults
    /// back in. A read-only mapping is dropped only when none of its pages is a private copy (`Anonymous:`
    /// in smaps): the relocated read-only data (`PT_GNU_RELRO`) are such copies, and dropping them would
    /// lose the relocations. In a binary linked with the Swift runtime (`--static-swift-stdlib`), the
    /// read-only segment holds the dynamic symbol table and relocations that only start-up reads (10 MB
    /// resident; docs/OBSERVATION.md, "Memory of `run`").
    public static func dropFilePages() {
        // Fault-around off (a constructor did it before main) for libraries loaded since too.
        _ = hosttwin_map_code_page_by_page()
        for mapping in mappingsToDrop() {
            guard let start = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
            // Drop the clean pages mapped so far (they come back from the page cache when used), and stop
            // readahead from reading neighbours that are not cached.
            _ = madvise(start, Int(mapping.end - mapping.start), MADV_DONTNEED)
            _ = madvise(start, Int(mapping.end - mapping.start), MADV_RANDOM)
        }
    }

    /// Read-only file mappings already looked at in smaps (by start and end): whether they hold private
    /// copies. A read-only mapping's private copies are made at start-up (relocation), never later.
    private static let readOnlyWithCopies = Mutex<[ClosedRange<UInt>: Bool]>([:])

    /// The code and the read-only data without private copies. Reading /proc/self/smaps walks the pages of
    /// every mapping (a third of `run`'s sealer thread when it was read at every drop); /proc/self/maps
    /// does not, so smaps is read only when a read-only mapping is new (start-up, a library loaded since).
    static func mappingsToDrop() -> [FileMapping] {
        var mappings = fileMappings(from: "/proc/self/maps")
        readOnlyWithCopies.withLock { known in
            if mappings.contains(where: { $0.isReadOnlyData && known[$0.start...$0.end] == nil }) {
                mappings = fileMappings(from: "/proc/self/smaps")
                for m in mappings where m.isReadOnlyData { known[m.start...m.end] = m.anonymousKB > 0 }
            }
            mappings.removeAll { !$0.isCode && !($0.isReadOnlyData && known[$0.start...$0.end] == false) }
        }
        return mappings
    }

    /// A private mapping of a file, from /proc/self/smaps.
    struct FileMapping {
        var start: UInt, end: UInt
        var permissions: Substring
        var residentKB = 0, anonymousKB = 0
        var isCode: Bool { permissions.hasPrefix("r-x") }
        var isReadOnlyData: Bool { permissions.hasPrefix("r--p") }
    }

    /// The process's mappings of files (a path in /proc/self/smaps), with their private copies' size
    /// (from /proc/self/maps: the mappings alone, sizes 0).
    static func fileMappings(from path: String = "/proc/self/smaps") -> [FileMapping] {
        guard let f = fopen(path, "r") else { return [] }
        defer { fclose(f) }
        var mappings: [FileMapping] = []
        var current: FileMapping?
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, Int32(line.count), f) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix("Rss:") || text.hasPrefix("Anonymous:") {
                // "Anonymous:   12 kB"; unreadable counts as a private copy, so the mapping is kept.
                let kB = Int(text.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 1
                if text.hasPrefix("Rss:") { current?.residentKB = kB } else { current?.anonymousKB = kB }
                continue
            }
            // A mapping's header: "start-end perms offset dev inode path"; field lines start with a name and a colon.
            let parts = text.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard parts.count >= 5, !parts[0].hasSuffix(":") else { continue }
            if let done = current { mappings.append(done) }
            current = nil
            let range = parts[0].split(separator: "-")
            guard parts.count == 6, parts[5].drop(while: { $0 == " " }).hasPrefix("/"),
                  range.count == 2, let lo = UInt(range[0], radix: 16), let hi = UInt(range[1], radix: 16), hi > lo
            else { continue }
            current = FileMapping(start: lo, end: hi, permissions: parts[1])
        }
        if let done = current { mappings.append(done) }
        return mappings
    }
}
