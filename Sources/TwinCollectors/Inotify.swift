#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Directory watches with inotify(7): which entries of the watched directories changed since the last
/// ``drain()``. Non-blocking and owned by one collector; the kernel drops a watch when its directory goes.
/// Where inotify is missing or its watch limit is reached, ``isComplete`` turns false and the caller falls
/// back to walking (the kernel cannot tell us about directories it does not watch).
final class InotifyWatcher {
    private let fd: Int32
    /// Watch descriptor → the directory it watches (as the caller names it).
    private var directories: [Int32: String] = [:]
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    /// False once a watch could not be added or the kernel's queue overflowed since the last full walk.
    private(set) var isComplete = true

    /// What a change to an entry of a directory looks like; not IN_ACCESS or IN_OPEN (reads are not changes).
    static let mask = UInt32(IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO
        | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)

    /// nil where the kernel has no inotify (or refuses another instance).
    init?() {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if fd < 0 { return nil }
    }

    deinit { close(fd) }

    var watchCount: Int { directories.count }

    /// Readable when changes are waiting (change-driven capture).
    var descriptor: Int32 { fd }

    /// Watches `path` (a directory), reported as `name` in ``drain()``; `mask`: the events that count as changes
    /// (by default every write, attribute change, creation, removal and move of an entry).
    func watch(_ path: String, as name: String, mask: UInt32 = InotifyWatcher.mask) {
        let wd = inotify_add_watch(fd, path, mask)
        if wd < 0 { isComplete = false; return }
        directories[wd] = name
    }

    /// Stops watching the directory reported as `name` (it was removed or moved away).
    func unwatch(_ name: String) {
        for (wd, dir) in directories where dir == name {
            inotify_rm_watch(fd, wd)
            directories[wd] = nil
        }
    }

    /// A full walk has just re-read everything: whatever was lost before is no longer missing.
    func walked() { isComplete = true }

    /// The entries (`DIR/NAME`, or `DIR` itself) changed since the last call; empty when nothing did.
    /// A queue overflow clears ``isComplete``: the caller must walk.
    func drain() -> Set<String> {
        var out = Set<String>()
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            buffer.withUnsafeBytes { raw in
                var off = 0
                let header = MemoryLayout<inotify_event>.size
                while off + header <= n {
                    let wd = raw.loadUnaligned(fromByteOffset: off, as: Int32.self)
                    let mask = raw.loadUnaligned(fromByteOffset: off + 4, as: UInt32.self)
                    let len = Int(raw.loadUnaligned(fromByteOffset: off + 12, as: UInt32.self))
                    let nameBytes = raw[(off + header)..<min(n, off + header + len)]
                    let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
                    off += header + len
                    if mask & UInt32(IN_Q_OVERFLOW) != 0 { isComplete = false; continue }
                    guard let dir = directories[wd] else { continue }
                    if mask & UInt32(IN_IGNORED) != 0 { directories[wd] = nil; continue }
                    out.insert(name.isEmpty ? dir : dir + "/" + name)
                }
            }
        }
        return out
    }
}

/// One file followed through inotify on its directory: writes closed and entries renamed in (an editor or
/// dpkg replaces a file by renaming a new one over it). For collectors that read a file at an interval of
/// seconds or a minute and should see its change at once (``ChangeDrivenCollector``).
final class FileChangeWatch {
    private let watcher: InotifyWatcher
    private let name: String

    /// nil where inotify is unavailable or the file's directory cannot be watched.
    init?(_ path: String) {
        guard let slash = path.lastIndex(of: "/"), let watcher = InotifyWatcher() else { return nil }
        watcher.watch(slash == path.startIndex ? "/" : String(path[..<slash]), as: "d", mask: UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_ONLYDIR))
        guard watcher.watchCount == 1 else { return nil }
        self.watcher = watcher
        name = "d/" + path[path.index(after: slash)...]
    }

    /// Readable when an entry of the directory changed.
    var descriptor: Int32 { watcher.descriptor }

    /// Takes what changed since the last call; true when the file was among it, or when events were lost.
    func changed() -> Bool {
        let names = watcher.drain()
        defer { watcher.walked() }
        return names.contains(name) || !watcher.isComplete
    }
}
