#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Crypto
import Dispatch
import Synchronization
import TwinCore

/// Configuration history and SUID files, as `files` entities keyed by path.
///
/// Watched paths (`/etc` by default) are walked once, then followed with inotify: a tick reads the
/// kernel's queue (one non-blocking read) and looks again only at what it names. Where inotify is
/// missing, its watch limit is reached or its queue overflowed, the tree is walked every minute
/// instead (every 10 minutes as a safety net otherwise). Each entry carries its type, mode, owner,
/// size, mtime and SHA-256; a text file of up to 64 KiB also its content — as `secret_content`, which the
/// data policy classes sensitive (sealed at rest, masked for readers), when the file is not readable by
/// others or its name says it holds a secret. Only what changed is re-read and re-hashed.
///
/// The SUID scan walks other trees (`/usr/bin`, `/tmp`, ...) for set-user-ID and set-group-ID files,
/// which become `files` entities too (`watch: suid`, no content). It runs beside the ticks. Where the
/// kernel tells what changes on the trees' filesystems (fanotify, as root: ``SUIDChangeWatcher``), a tick
/// looks at the entries created, changed, moved or removed since the last, and the scan is a safety net
/// every `suidMaxInterval`. Otherwise (or after the kernel dropped events) it runs every 15 minutes, within a
/// CPU share of its own: when a scan costs more than `suidCPUShare` of a core over 15 minutes (a large
/// /usr/lib and /tmp, cold caches), the next waits longer, up to `suidMaxInterval`
/// (``suidScanInterval(cpuSeconds:)``; the metrics `hosttwin_files_suid_scan_cpu_seconds`,
/// `..._interval_seconds` and `hosttwin_files_suid_fanotify` say how it stands).
public final class FileCollector: Collector {
    public let name = "files"
    /// Text files up to this size keep their content as versions.
    public static let maxContentBytes = 64 * 1024
    /// Larger files are not hashed: type, mode, owner, size and mtime only.
    public static let maxHashBytes: Int64 = 64 << 20
    /// The most entries one walk of all watched paths (or all SUID paths) visits.
    public static let maxEntries = 100_000
    /// How often the watched trees are walked: with inotify (a safety net) and without.
    static let walkWithInotify: Int64 = 600_000
    static let walkWithoutInotify: Int64 = 60_000
    static let suidInterval: Int64 = 900_000
    /// The SUID scan's average share of one core: a tenth of `run`'s default CPU budget (0.2 %).
    static let suidCPUShare = 0.0002
    /// The longest wait between SUID scans, however much one costs; the wait while changes are told.
    static let suidMaxInterval: Int64 = 6 * 3_600_000
    /// The most entries a tick walks under a directory the kernel named (moved in, or its mode changed);
    /// a larger tree waits for a full scan.
    static let suidSubtreeEntries = 10_000

    /// What an entry was when last looked at: enough to tell whether its content must be read again.
    struct Record: Sendable {
        var ino: UInt64, mode: UInt32, uid: UInt32, gid: UInt32, size: Int64, mtime: Int64, ctime: Int64
        var entity: Entity

        init(_ st: stat, _ entity: Entity) {
            ino = UInt64(st.st_ino); mode = st.st_mode; uid = st.st_uid; gid = st.st_gid; size = Int64(st.st_size)
            mtime = FileCollector.nanos(st.st_mtim); ctime = FileCollector.nanos(st.st_ctim)
            self.entity = entity
        }

        /// The same inode, mode, owner, size and times.
        func same(_ o: Record) -> Bool {
            ino == o.ino && mode == o.mode && uid == o.uid && gid == o.gid && size == o.size && mtime == o.mtime && ctime == o.ctime
        }

        /// The content cannot have changed: the same inode, size and times.
        func sameContent(_ o: Record) -> Bool { ino == o.ino && size == o.size && mtime == o.mtime && ctime == o.ctime }
    }

    private var config: [String: Record] = [:]
    private var suid: [String: Record] = [:]
    private var watcher: InotifyWatcher?
    private var started = false
    private var lastWalk: Int64?
    private var lastSuidWalk: Int64?
    /// CPU time of the last SUID scan: the wait before the next follows from it.
    private var suidScanCPU = 0.0
    private let scanner = SUIDScanner()
    private var suidWatcher: SUIDChangeWatcher?
    /// When the kernel's SUID events were last read and looked at (monotonic ms): outside the collector's
    /// runs, again ``suidReadGap`` after that at the soonest.
    private var suidDrained: Int64 = .min
    /// About a second, a little less so that each one-second tick reads it.
    static let suidReadGap: Int64 = 900
    /// Whether ``suidReadGap`` has passed since the SUID events were last read.
    private var suidReadDue: Bool { monotonicMicros() / 1000 - suidDrained >= Self.suidReadGap }
    /// inotify's and fanotify's descriptors as one (``ReadableSet``), made when both are waited on.
    private var bothSources: ReadableSet?
    /// SUID files changed at a tick the collector was not due at (``keepUp(_:)``): handed over at its next run.
    private var suidChangedBetweenRuns = false
    /// A scan runs in the background: entries the kernel named meanwhile are looked at again when its
    /// result comes (the scan may have seen them before they changed).
    private var suidScanning = false
    private var suidTouched: [String: Bool] = [:] // path → a directory was moved in there
    /// An event's directory could not be named while a scan ran: every file of its result is looked at again.
    private var suidUnnamedWhileScanning = false
    /// A tree named by the kernel was too large to walk at a tick: the next scan is due as without events.
    private var suidRescan = false
    private var truncated = false
    private var suidTruncated = false
    private var users = UserNames()
    private var groups = UserNames(file: "/etc/group")
    private var changes = 0.0

    private let useInotify: Bool
    private let useFanotify: Bool

    /// `inotify: false` walks the watched trees every minute instead (as where the kernel has no inotify);
    /// `fanotify: false` scans for SUID files periodically, without the kernel's events.
    public init(inotify: Bool = true, fanotify: Bool = true) {
        useInotify = inotify
        useFanotify = fanotify
    }

    /// One SUID scan of `roots` on the caller's thread (for `hosttwin bench files`): the files found and
    /// whether the entry budget stopped it.
    public static func scanSUID(_ roots: [String], paths: HostPaths) -> (files: Int, truncated: Bool) {
        let r = SUIDScanner.run(roots, paths: paths, previous: [:])
        return (r.found.count, r.truncated)
    }

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let watch = ctx.config.watchPaths, suidPaths = ctx.config.suidPaths
        if watch.isEmpty && suidPaths.isEmpty { return .noData("no watched paths configured") }
        let now = ctx.observation.timestamp
        // The SUID paths outside the watched trees: needed at the start and when a scan is due.
        var suidRoots: [String] { suidPaths.filter { r in !r.isEmpty && !watch.contains { Self.isUnder(r, $0) } } }
        if !started {
            watcher = useInotify ? InotifyWatcher() : nil
            // Marked before the first scan starts: nothing that changes after it goes unseen.
            let roots = suidRoots
            suidWatcher = useFanotify && !roots.isEmpty ? SUIDChangeWatcher(roots: roots, paths: ctx.paths) : nil
            started = true
        }
        users.refreshIfNeeded(ctx.paths, ctx.reader)
        groups.refreshIfNeeded(ctx.paths, ctx.reader)
        var changed = false
        let every = watcher?.isComplete == true ? Self.walkWithInotify : Self.walkWithoutInotify
        if lastWalk.map({ now - $0 >= every }) ?? true || watcher?.isComplete == false {
            changed = walkConfig(watch, ctx) || changed
            lastWalk = now
        } else {
            // Paths given as files are not in a watched directory of their own: look at them every tick.
            var dirty = watcher?.drain() ?? []
            for p in watch where config[p]?.entity.attributes["type"] != "dir" { dirty.insert(p) }
            for p in dirty.sorted() where watch.contains(where: { Self.isUnder(p, $0) }) {
                changed = refresh(p, ctx) || changed
            }
            if watcher?.isComplete == false { changed = walkConfig(watch, ctx) || changed; lastWalk = now }
        }
        let told = (suidWatcher.map { $0.isComplete && !$0.overflowed } ?? false) && !suidRescan
        let suidEvery = told ? Self.suidMaxInterval : Self.suidScanInterval(cpuSeconds: suidScanCPU)
        let due = lastSuidWalk.map { now - $0 >= suidEvery || now < $0 } ?? true
        if due { lastSuidWalk = now }
        changed = scanSUID(due ? suidRoots : [], ctx, due: due) || changed
        if let suidWatcher { changed = followSUID(suidWatcher, ctx) || changed }
        changed = changed || suidChangedBetweenRuns
        if changed || ctx.restate {
            suidChangedBetweenRuns = false
            ctx.observation.set(.files, config.values.map(\.entity) + suid.values.map(\.entity))
        }
        ctx.observation.add("hosttwin_files_watched", .empty, Double(config.count))
        ctx.observation.add("hosttwin_files_suid", .empty, Double(suid.count))
        ctx.observation.counter("hosttwin_files_changes_total", .empty, changes)
        ctx.observation.add("hosttwin_files_inotify", .empty, watcher?.isComplete == true ? 1 : 0)
        ctx.observation.add("hosttwin_files_suid_fanotify", .empty, told ? 1 : 0)
        ctx.observation.add("hosttwin_files_suid_scan_truncated", .empty, suidTruncated ? 1 : 0)
        ctx.observation.add("hosttwin_files_suid_scan_cpu_seconds", .empty, suidScanCPU)
        ctx.observation.add("hosttwin_files_suid_scan_interval_seconds", .empty, Double(suidEvery) / 1000)
        if truncated { return .noData("walk stopped after \(Self.maxEntries) entries; watch fewer paths") }
        return .ok
    }

    /// How long to wait between SUID scans (ms) after one that cost `cpuSeconds` of CPU: every 15 minutes
    /// while that keeps the scans' average within ``suidCPUShare`` of a core, longer when not, at most
    /// ``suidMaxInterval``.
    static func suidScanInterval(cpuSeconds: Double) -> Int64 {
        guard cpuSeconds.isFinite, cpuSeconds > 0 else { return suidInterval }
        let fits = cpuSeconds / suidCPUShare * 1000
        return fits >= Double(suidMaxInterval) ? suidMaxInterval : max(suidInterval, Int64(fits.rounded(.up)))
    }

    /// Whether `path` is `root` or inside it.
    public static func isUnder(_ path: String, _ root: String) -> Bool {
        path == root || path.hasPrefix(root.hasSuffix("/") ? root : root + "/")
    }

    // MARK: Watched trees

    /// Walks every watched path, re-reading what changed and forgetting what is gone. True when any entry changed.
    private func walkConfig(_ roots: [String], _ ctx: CollectContext) -> Bool {
        var seen = Set<String>()
        var budget = Self.maxEntries
        var changed = false
        for root in roots { changed = walk(root, ctx, &seen, &budget) || changed }
        for path in config.keys where !seen.contains(path) {
            config[path] = nil
            changed = true
            changes += 1
        }
        truncated = budget < 0
        watcher?.walked()
        return changed
    }

    private func walk(_ path: String, _ ctx: CollectContext, _ seen: inout Set<String>, _ budget: inout Int) -> Bool {
        budget -= 1
        guard budget >= 0, let st = Self.lstat(ctx.paths.root(path)) else { return false }
        seen.insert(path)
        var changed = update(path, st, ctx)
        if st.st_mode & S_IFMT == S_IFDIR {
            watcher?.watch(ctx.paths.root(path), as: path)
            for name in ctx.reader.list(ctx.paths.root(path))?.sorted() ?? [] {
                changed = walk(path == "/" ? "/" + name : path + "/" + name, ctx, &seen, &budget) || changed
            }
        }
        return changed
    }

    /// Looks again at one path inotify named: updated, walked when it is a new directory, or forgotten
    /// (with everything under it) when gone.
    private func refresh(_ path: String, _ ctx: CollectContext) -> Bool {
        guard let st = Self.lstat(ctx.paths.root(path)) else {
            guard config[path] != nil else { return false }
            watcher?.unwatch(path)
            for p in config.keys where Self.isUnder(p, path) { config[p] = nil; watcher?.unwatch(p) }
            changes += 1
            return true
        }
        if st.st_mode & S_IFMT == S_IFDIR, config[path] == nil || config[path]?.ino != UInt64(st.st_ino) {
            // A new directory, or another one in its place (renamed over it): what it held before is gone.
            var seen = Set<String>(), budget = Self.maxEntries
            var changed = walk(path, ctx, &seen, &budget)
            for p in config.keys where Self.isUnder(p, path) && !seen.contains(p) { config[p] = nil; changed = true }
            return changed
        }
        return update(path, st, ctx)
    }

    /// Records `path` as `st` describes it; reads and hashes it only when its content may have changed.
    private func update(_ path: String, _ st: stat, _ ctx: CollectContext) -> Bool {
        let old = config[path]
        var record = Record(st, Entity(kind: .files, key: path, attributes: [:]))
        if let old, old.same(record) { return false }
        let sameContent = old?.sameContent(record) ?? false
        record.entity.attributes = attributes(path, st, ctx, reuse: sameContent ? old?.entity.attributes : nil, watch: "config")
        if record.entity.attributes == old?.entity.attributes { config[path] = record; return false }
        config[path] = record
        changes += 1
        return true
    }

    /// An entry's attributes, owner and group named; `reuse` holds the previous ones when only its mode or
    /// owner changed (nothing is read then).
    private func attributes(_ path: String, _ st: stat, _ ctx: CollectContext, reuse: [String: AttributeValue]?, watch: String) -> [String: AttributeValue] {
        var a = Self.attributes(path, st, fsPath: ctx.paths.root(path), reuse: reuse, watch: watch)
        a["owner"] = .string(users.name(st.st_uid))
        a["group"] = .string(groups.name(st.st_gid))
        return a
    }

    /// An entry's attributes but its owner's and group's names.
    static func attributes(_ path: String, _ st: stat, fsPath: String, reuse: [String: AttributeValue]?, watch: String) -> [String: AttributeValue] {
        let type = st.st_mode & S_IFMT
        var a: [String: AttributeValue] = [
            "path": .string(path), "type": .string(typeName(type)), "mode": .string(octal(st.st_mode & 0o7777)),
            "uid": .int(Int64(st.st_uid)), "gid": .int(Int64(st.st_gid)), "watch": .string(watch),
        ]
        switch type {
        case S_IFREG:
            a["size"] = .int(Int64(st.st_size))
            a["mtime"] = .string(TwinTime.rfc3339(nanos(st.st_mtim) / 1_000_000))
            a["setuid"] = .bool(st.st_mode & (S_ISUID | S_ISGID) != 0)
            if let reuse {
                for k in ["sha256", "content", "secret_content"] { a[k] = reuse[k] }
            } else if let read = read(fsPath, expectedInode: UInt64(st.st_ino), keepText: watch == "config") {
                a["sha256"] = .string(read.sha256)
                if let text = read.text {
                    a[isSensitive(path, mode: st.st_mode) ? "secret_content" : "content"] = .string(text)
                }
            }
        case S_IFLNK:
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX))
            let n = readlink(fsPath, &buf, buf.count)
            a["target"] = n >= 0 ? .string(String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)) : .null
        default: break
        }
        return a
    }

    // MARK: SUID scan

    /// Starts a scan of `roots` (the SUID paths, given when `due`) on a background queue (a walk of /usr/lib
    /// and /tmp can take a second and must not hold a tick back), or takes the result of the last one: true
    /// when the set changed.
    private func scanSUID(_ roots: [String], _ ctx: CollectContext, due: Bool) -> Bool {
        guard let result = scanner.take() else {
            if due, scanner.start(roots, paths: ctx.paths, previous: suid) {
                suidWatcher?.rescanned()
                (suidScanning, suidRescan, suidUnnamedWhileScanning) = (true, false, false)
                suidTouched = [:]
            }
            return false
        }
        suidScanning = false
        var changed = result.found.count != suid.count
        var found = result.found
        for (path, r) in result.found {
            if let old = suid[path], old.entity.attributes["sha256"] == r.entity.attributes["sha256"], old.same(r) { found[path] = old; continue }
            found[path]?.entity.attributes["owner"] = .string(users.name(r.uid))
            found[path]?.entity.attributes["group"] = .string(groups.name(r.gid))
            changed = true
            changes += 1
        }
        suid = found
        suidTruncated = result.truncated
        suidScanCPU = result.cpuSeconds
        if suidUnnamedWhileScanning { for path in suid.keys where suidTouched[path] == nil { suidTouched[path] = false } }
        for (path, movedIn) in suidTouched.sorted(by: { $0.key < $1.key }) { changed = lookAgainSUID(path, movedIn: movedIn, ctx) || changed }
        suidTouched = [:]
        return changed
    }

    /// Looks at the entries the kernel named since the last tick. True when an SUID file came, changed or went.
    private func followSUID(_ watcher: SUIDChangeWatcher, _ ctx: CollectContext) -> Bool {
        defer { suidDrained = monotonicMicros() / 1000 }
        var changed = false
        let unnamed = watcher.drain { path, movedIn in
            changed = lookAgainSUID(path, movedIn: movedIn, ctx) || changed
            if suidScanning { suidTouched[path] = movedIn || suidTouched[path] == true }
        }
        // A directory removed before its events were read: the SUID files known are looked at one by one.
        if unnamed {
            for path in suid.keys.sorted() { changed = lookAgainSUID(path, movedIn: false, ctx) || changed }
            if suidScanning { suidUnnamedWhileScanning = true }
        }
        return changed
    }

    /// Records what `path` is now: an SUID file kept or updated; a directory moved in walked; a file that
    /// is not SUID forgotten; nothing there, forgotten with what was known under it.
    private func lookAgainSUID(_ path: String, movedIn: Bool, _ ctx: CollectContext) -> Bool {
        guard let st = Self.lstat(ctx.paths.root(path)) else { return forgetSUID(under: path) }
        switch st.st_mode & S_IFMT {
        case S_IFREG where st.st_mode & (S_ISUID | S_ISGID) != 0:
            return recordSUID(path, st, ctx)
        case S_IFDIR:
            guard movedIn else { return false } // made here (empty) or its mode changed: its entries have events of their own
            var found: [String: Record] = [:], budget = Self.suidSubtreeEntries
            SUIDScanner.scan(path, ctx.paths, &found, &budget)
            if budget < 0 { suidRescan = true }
            var changed = false
            for known in suid.keys where Self.isUnder(known, path) && found[known] == nil { suid[known] = nil; changed = true; changes += 1 }
            for p in found.keys.sorted() {
                if let st = Self.lstat(ctx.paths.root(p)) { changed = recordSUID(p, st, ctx) || changed }
            }
            return changed
        default:
            // A file that is not (or no longer) SUID: only itself to forget.
            guard suid.removeValue(forKey: path) != nil else { return false }
            changes += 1
            return true
        }
    }

    /// Adds or updates one SUID file; its content is hashed again only when it may have changed.
    private func recordSUID(_ path: String, _ st: stat, _ ctx: CollectContext) -> Bool {
        var record = Record(st, Entity(kind: .files, key: path, attributes: [:]))
        let old = suid[path]
        if let old, old.same(record) { return false }
        let reuse = old.flatMap { $0.sameContent(record) ? $0.entity.attributes : nil }
        record.entity.attributes = attributes(path, st, ctx, reuse: reuse, watch: "suid")
        record.entity.attributes["package"] = reuse?["package"] ?? SUIDScanner.packages(of: [path], paths: ctx.paths)[path].map { .string($0) } ?? .null
        suid[path] = record
        if record.entity.attributes == old?.entity.attributes { return false }
        changes += 1
        return true
    }

    /// Forgets the SUID files at or under `path`.
    private func forgetSUID(under path: String) -> Bool {
        let gone = suid.keys.filter { Self.isUnder($0, path) }
        for p in gone { suid[p] = nil }
        changes += Double(gone.count)
        return !gone.isEmpty
    }

    // MARK: Pure helpers

    static func lstat(_ path: String) -> stat? {
        var st = stat()
        return Glibc.lstat(path, &st) == 0 ? st : nil
    }

    static func nanos(_ t: timespec) -> Int64 { Int64(t.tv_sec) &* 1_000_000_000 &+ Int64(t.tv_nsec) }

    static func typeName(_ type: mode_t) -> String {
        switch type {
        case S_IFREG: return "file"
        case S_IFDIR: return "dir"
        case S_IFLNK: return "symlink"
        case S_IFIFO: return "fifo"
        case S_IFSOCK: return "socket"
        case S_IFCHR, S_IFBLK: return "device"
        default: return "other"
        }
    }

    /// Permission bits as four octal digits (`0644`, `4755`).
    public static func octal(_ bits: mode_t) -> String {
        let s = String(bits, radix: 8)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }

    /// Whether a file's content is kept sealed (`secret_content`): not readable by others, or named like a
    /// secret (`shadow`, keys, certificates' private halves, tokens, credentials).
    public static func isSensitive(_ path: String, mode: mode_t) -> Bool {
        if mode & S_IROTH == 0 { return true }
        let name = path.split(separator: "/").last.map { $0.lowercased() } ?? ""
        if name.hasPrefix("shadow") || name.hasPrefix("gshadow") || name.hasSuffix(".key") || name.hasSuffix("_key")
            || name.hasSuffix(".pem") || name.hasSuffix(".p12") { return true }
        return ["secret", "token", "credential", "password"].contains { name.contains($0) }
    }

    /// Whether bytes are text worth keeping as versions: UTF-8 without NUL.
    public static func isText(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if bytes.contains(0) { return false }
        var it = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&it) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    /// A regular file's SHA-256 and, when it is small text and `keepText`, its content. Opened without
    /// following links and without blocking (a FIFO swapped in is not read), and only when it is still the
    /// inode the walk saw.
    static func read(_ path: String, expectedInode: UInt64, keepText: Bool) -> (sha256: String, text: String?)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, UInt64(st.st_ino) == expectedInode, Int64(st.st_size) <= maxHashBytes else { return nil }
        var hasher = SHA256()
        var kept: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var total = 0
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            total += n
            if Int64(total) > maxHashBytes { return nil }
            chunk.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            if keepText && total <= maxContentBytes { kept.append(contentsOf: chunk[0..<n]) }
        }
        let hex = hasher.finalize().hex
        guard keepText, total <= maxContentBytes, kept.withUnsafeBytes(isText) else { return (hex, nil) }
        return (hex, String(decoding: kept, as: UTF8.self))
    }
}

/// The SUID scan on a background queue: one at a time; its result waits until the collector takes it.
final class SUIDScanner: Sendable {
    struct Result: Sendable {
        var found: [String: FileCollector.Record]
        var truncated: Bool
        /// CPU time the scan took on its thread.
        var cpuSeconds = 0.0
    }
    private let state = Mutex<(running: Bool, result: Result?)>((false, nil))

    /// The last scan's result, once (nil while it runs or when none finished since).
    func take() -> Result? {
        state.withLock { s in defer { s.result = nil }; return s.result }
    }

    /// Scans `roots` (host paths, read under `paths.root`) unless a scan is running. Files whose inode,
    /// size and times are as in `previous` keep their hash without being read.
    /// True when it started one.
    func start(_ roots: [String], paths: HostPaths, previous: [String: FileCollector.Record]) -> Bool {
        guard state.withLock({ s in s.running ? false : { s.running = true; return true }() }) else { return false }
        DispatchQueue.global(qos: .utility).async { [self] in
            let cpu = threadCPUMicros()
            var result = Self.run(roots, paths: paths, previous: previous)
            result.cpuSeconds = Double(threadCPUMicros() - cpu) / 1e6
            state.withLock { $0 = (false, result) }
        }
        return true
    }

    /// One scan, on the caller's thread.
    static func run(_ roots: [String], paths: HostPaths, previous: [String: FileCollector.Record]) -> Result {
        var found: [String: FileCollector.Record] = [:]
        var budget = FileCollector.maxEntries
        for root in roots { scan(root, paths, &found, &budget) }
        // Which installed package owns each file: read again only when the set of files changed.
        let owners = Set(found.keys) == Set(previous.keys)
            ? previous.compactMapValues { r -> String? in if case .string(let p)? = r.entity.attributes["package"] { return p }; return nil }
            : packages(of: Set(found.keys), paths: paths)
        for (path, r) in found {
            let reuse = previous[path].flatMap { $0.sameContent(r) ? $0.entity.attributes : nil }
            var st = stat()
            guard lstat(paths.root(path), &st) == 0 else { found[path] = nil; continue }
            found[path]?.entity.attributes = FileCollector.attributes(path, st, fsPath: paths.root(path), reuse: reuse, watch: "suid")
            found[path]?.entity.attributes["package"] = owners[path].map { .string($0) } ?? .null
        }
        return Result(found: found, truncated: budget < 0)
    }

    /// The dpkg package that lists each path (`/var/lib/dpkg/info/*.list`). With merged /usr a package
    /// lists `/bin/su` for the file found at `/usr/bin/su`: both names are looked for.
    static func packages(of wanted: Set<String>, paths: HostPaths) -> [String: String] {
        var names: [String: String] = [:]
        for p in wanted {
            names[p] = p
            for (usr, bare) in [("/usr/bin/", "/bin/"), ("/usr/sbin/", "/sbin/"), ("/usr/lib/", "/lib/")] where p.hasPrefix(usr) {
                names[bare + p.dropFirst(usr.count)] = p
            }
        }
        let dir = paths.root("/var/lib/dpkg/info")
        let reader = FileReader()
        // 10 MB of lists on a small host: a line becomes a string only when its length is one of the names'.
        let lengths = Set(names.keys.map(\.utf8.count))
        var out: [String: String] = [:]
        for file in reader.list(dir) ?? [] where file.hasSuffix(".list") {
            let package = String(file.dropLast(5).prefix { $0 != ":" })
            reader.withBytes(dir + "/" + file) { bytes in
                // Line by line in place: `split` would hold an array of every line of a large list.
                var start = 0
                while start < bytes.count {
                    let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
                    if lengths.contains(end - start),
                       let found = names[String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)] {
                        out[found] = package
                    }
                    start = end + 1
                }
            }
        }
        return out
    }

    /// Adds the SUID files under `path` to `found`, visiting at most `budget` entries (negative after: stopped).
    static func scan(_ path: String, _ paths: HostPaths, _ found: inout [String: FileCollector.Record], _ budget: inout Int) {
        guard let dir = opendir(paths.root(path)) else { return }
        defer { closedir(dir) }
        let fd = dirfd(dir)
        while let e = readdir(dir) {
            budget -= 1
            if budget < 0 { return }
            let name = e.entryName
            if name == "." || name == ".." { continue }
            let child = path == "/" ? "/" + name : path + "/" + name
            switch Int32(e.entryType) {
            case Int32(DT_DIR): scan(child, paths, &found, &budget)
            case Int32(DT_REG), Int32(DT_UNKNOWN):
                var st = stat()
                guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                if st.st_mode & S_IFMT == S_IFDIR { scan(child, paths, &found, &budget); continue }
                guard st.st_mode & S_IFMT == S_IFREG, st.st_mode & (S_ISUID | S_ISGID) != 0 else { continue }
                found[child] = FileCollector.Record(st, Entity(kind: .files, key: child, attributes: [:]))
            default: continue
            }
        }
    }
}

extension FileCollector: ChangeDrivenCollector {
    /// Between ticks the collector waits on inotify's events (the watched trees, at once) and fanotify's (the
    /// SUID files, at most once a second: a build writing thousands of files a second elsewhere on their
    /// filesystems wakes the collection thread once a second, and the kernel's queue, 16,384 events, no
    /// longer overflows between two runs of the collector, 15 s apart when the budget relaxes it).
    public var changeDescriptor: Int32? {
        let inotify = watcher?.isComplete == true ? watcher?.descriptor : nil
        let fanotify = suidWatcher.flatMap { suidReadDue ? $0.descriptor : nil }
        guard let inotify, let fanotify else { return inotify ?? fanotify }
        if bothSources == nil { bothSources = ReadableSet([inotify, fanotify]) }
        return bothSources?.descriptor ?? inotify
    }

    /// Between ticks: the entries inotify reported under the watched paths, re-read (and hashed) at once,
    /// and the SUID entries fanotify named. A lost event (queue overflow) leaves it to the tick's walk or scan.
    public func refreshChanged(_ ctx: inout CollectContext) -> Bool {
        var changed = false
        if let watcher, watcher.isComplete {
            let watch = ctx.config.watchPaths
            for p in watcher.drain().sorted() where watch.contains(where: { Self.isUnder(p, $0) }) {
                changed = refresh(p, ctx) || changed
            }
        }
        if let suidWatcher, suidReadDue { changed = followSUID(suidWatcher, ctx) || changed }
        guard changed || suidChangedBetweenRuns else { return false }
        ctx.observation.set(.files, config.values.map(\.entity) + suid.values.map(\.entity))
        suidChangedBetweenRuns = false
        return true
    }

    /// The SUID events, read at a tick the collector is not due at when a second has passed since the last
    /// read: under the budget the loop holds refreshes back (the relaxed collector runs one tick in 15), and a
    /// build's files filled the kernel's queue (16,384 events) before it ran.
    public func keepUp(_ ctx: inout CollectContext) {
        guard let suidWatcher, suidReadDue else { return }
        if followSUID(suidWatcher, ctx) { suidChangedBetweenRuns = true }
    }
}
