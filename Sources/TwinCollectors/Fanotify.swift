#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CFanotify

/// One event of a fanotify group that reports directory handles and entry names
/// (`FAN_REPORT_DFID_NAME`): what happened, on which filesystem, in which directory and to which entry.
public struct FanotifyEvent: Sendable, Equatable {
    /// `FAN_*` bits: `FAN_CREATE`, `FAN_ATTRIB`, `FAN_ONDIR` (the entry is a directory), `FAN_Q_OVERFLOW`...
    public var mask: UInt64
    /// The filesystem's id (`statfs`' `f_fsid`), its eight bytes as one number.
    public var fsid: UInt64
    /// The directory's `struct file_handle` as the kernel wrote it: `handle_bytes`, `handle_type`, the handle.
    public var directory: [UInt8]
    /// The entry's name in that directory ("" when the event named none, "." for the directory itself).
    public var name: String

    public init(mask: UInt64, fsid: UInt64, directory: [UInt8], name: String) {
        (self.mask, self.fsid, self.directory, self.name) = (mask, fsid, directory, name)
    }

    /// The kernel dropped events: its queue was full.
    public var isOverflow: Bool { mask & UInt64(FAN_Q_OVERFLOW) != 0 }
    /// The entry is a directory.
    public var isDirectory: Bool { mask & UInt64(FAN_ONDIR) != 0 }
}

/// The events in one read of a fanotify descriptor (fanotify(7): a metadata header per event, then its
/// information records: the directory's handle, with the entry's name or without). Other records (an
/// object's own handle, a pidfd) are passed over. A record that does not fit what the kernel documents is
/// skipped; an event whose length runs past the buffer, or an unknown metadata version, ends the parse.
public func parseFanotifyEvents(_ bytes: UnsafeRawBufferPointer) -> [FanotifyEvent] {
    var out: [FanotifyEvent] = []
    let header = 24 // event_len u32, vers u8, reserved u8, metadata_len u16, mask u64, fd s32, pid s32
    var off = 0
    while off + header <= bytes.count {
        let eventLength = Int(bytes.loadUnaligned(fromByteOffset: off, as: UInt32.self))
        let version = bytes[off + 4]
        let metadataLength = Int(bytes.loadUnaligned(fromByteOffset: off + 6, as: UInt16.self))
        guard version == FANOTIFY_METADATA_VERSION, eventLength >= header, metadataLength >= header,
              metadataLength <= eventLength, eventLength <= bytes.count - off else { break }
        var event = FanotifyEvent(mask: bytes.loadUnaligned(fromByteOffset: off + 8, as: UInt64.self), fsid: 0, directory: [], name: "")
        var info = off + metadataLength
        let end = off + eventLength
        while info + 4 <= end {
            let type = bytes[info]
            let length = Int(bytes.loadUnaligned(fromByteOffset: info + 2, as: UInt16.self))
            guard length >= 4, length <= end - info else { break }
            // fsid (8 bytes), then struct file_handle: handle_bytes u32, handle_type s32, f_handle[handle_bytes].
            let handleAt = info + 12
            let named = Int32(type) == FAN_EVENT_INFO_TYPE_DFID_NAME
            if named || Int32(type) == FAN_EVENT_INFO_TYPE_DFID, handleAt + 8 <= info + length {
                let handleBytes = Int(bytes.loadUnaligned(fromByteOffset: handleAt, as: UInt32.self))
                let handleEnd = handleAt + 8 + handleBytes
                if handleBytes <= 128, handleEnd <= info + length, event.directory.isEmpty {
                    event.fsid = bytes.loadUnaligned(fromByteOffset: info + 4, as: UInt64.self)
                    event.directory = Array(bytes[handleAt..<handleEnd])
                    if named {
                        let name = bytes[handleEnd..<(info + length)]
                        event.name = String(decoding: name.prefix { $0 != 0 }, as: UTF8.self)
                    }
                }
            }
            info += length
        }
        out.append(event)
        off = end
    }
    return out
}

/// Entries created, changed (mode, owner), moved or removed anywhere under the SUID paths, as fanotify(7)
/// reports them for the whole filesystems those paths are on: between two SUID scans the collector looks
/// at what changed instead of walking /usr/lib and /tmp again. Needs `CAP_SYS_ADMIN` (a filesystem mark)
/// and `CAP_DAC_READ_SEARCH` (to name an event's directory from its handle), and Linux 5.9; without them
/// ``init(roots:paths:)`` fails and the scans stay periodic. Non-blocking, owned by one collector.
final class SUIDChangeWatcher {
    private let fd: Int32
    /// A descriptor of a directory on each marked filesystem, by fsid: what a directory handle is opened against.
    private var filesystems: [UInt64: Int32] = [:]
    /// Where an event's directory is.
    private enum Place: Equatable {
        /// Under an SUID path, or above one (its host path).
        case path(String)
        /// Nowhere its entries could be or hold an SUID path's: its events are read and dropped.
        case elsewhere
        /// Removed, or its handle no longer opens.
        case gone
    }
    /// Directory handles already placed (fsid and handle → place).
    private var places: [[UInt8]: Place] = [:]
    /// The last event's directory and its place: events come in runs from one directory.
    private var last: (fsid: UInt64, directory: [UInt8], place: Place)?
    private let roots: [String]
    private let paths: HostPaths
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    /// Whether every SUID path that exists is on a marked filesystem.
    private(set) var isComplete = true
    /// The kernel's queue overflowed since the last ``rescanned()``: changes may have been missed.
    private(set) var overflowed = false

    /// The events a change to an SUID file makes: a new entry (created, linked or moved in), its mode or
    /// owner changed, an entry gone (removed or moved away) — files and directories alike.
    static let mask = UInt64(FAN_CREATE | FAN_ATTRIB | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_DELETE) | UInt64(FAN_ONDIR)

    /// Marks the filesystems of `roots` (host paths); nil where fanotify with directory handles is missing
    /// or refused.
    init?(roots: [String], paths: HostPaths) {
        fd = hosttwin_fanotify_init(UInt32(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME), UInt32(O_RDONLY))
        guard fd >= 0 else { return nil }
        self.roots = roots
        self.paths = paths
        for root in roots {
            var fsid: UInt64 = 0
            guard hosttwin_fsid(paths.root(root), &fsid) == 0 else { continue } // not there: nothing to watch
            if filesystems[fsid] != nil { continue }
            // Opened for reading: open_by_handle_at(2) refuses an O_PATH descriptor as its mount.
            let dir = open(paths.root(root), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard dir >= 0 else { isComplete = false; continue }
            guard hosttwin_fanotify_mark(fd, UInt32(FAN_MARK_ADD | FAN_MARK_FILESYSTEM), Self.mask, AT_FDCWD, paths.root(root)) == 0 else {
                close(dir)
                isComplete = false
                continue
            }
            filesystems[fsid] = dir
        }
        if filesystems.isEmpty { close(fd); return nil }
    }

    deinit {
        for dir in filesystems.values { close(dir) }
        close(fd)
    }

    /// A full scan starts now: what an overflow lost, it will find.
    func rescanned() { overflowed = false }

    /// Readable when events are waiting (change-driven capture).
    var descriptor: Int32 { fd }

    /// Calls `look` with what the events since the last call name under the roots (host paths, once per read
    /// of the queue, with whether a directory was moved in there: only then is there a tree to walk, as a
    /// directory made there is empty and what comes into it has events of its own), a read at a time so that
    /// a burst of events holds one buffer's worth. True when an event's directory could no longer be named
    /// (removed before it was read: what was under it must be looked at again).
    func drain(_ look: (_ path: String, _ movedIn: Bool) -> Void) -> Bool {
        var unnamed = false
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            let events = buffer.withUnsafeBytes { parseFanotifyEvents(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            var entries: [(path: String, movedIn: Bool)] = [], index: [String: Int] = [:]
            for e in events {
                if e.isOverflow { overflowed = true; continue }
                guard !e.directory.isEmpty else { unnamed = true; continue }
                let dir: String
                switch place(e) {
                case .path(let p): dir = p
                case .elsewhere: continue
                case .gone: unnamed = true; continue
                }
                let path = e.name.isEmpty || e.name == "." ? dir : dir == "/" ? "/" + e.name : dir + "/" + e.name
                let moved = e.isDirectory && e.mask & UInt64(FAN_MOVED_FROM | FAN_MOVED_TO) != 0
                // A directory moved in or out of sight: the places of directories under it have changed.
                if moved { places.removeAll(keepingCapacity: true); last = nil }
                guard roots.contains(where: { FileCollector.isUnder(path, $0) }) else { continue }
                let movedIn = moved && e.mask & UInt64(FAN_MOVED_TO) != 0
                if let i = index[path] { entries[i].movedIn = entries[i].movedIn || movedIn; continue }
                index[path] = entries.count
                entries.append((path, movedIn))
            }
            for (path, movedIn) in entries { look(path, movedIn) }
        }
        return unnamed
    }

    /// Where an event's directory is, from its handle (cached).
    private func place(_ e: FanotifyEvent) -> Place {
        if let last, last.fsid == e.fsid, last.directory == e.directory { return last.place }
        let key = withUnsafeBytes(of: e.fsid) { Array($0) } + e.directory
        let found: Place
        if let known = places[key] { found = known } else {
            found = lookUp(e)
            if places.count >= 4096 { places.removeAll(keepingCapacity: true) }
            places[key] = found
        }
        last = (e.fsid, e.directory, found)
        return found
    }

    /// Opens the directory by its handle and reads its name back from `/proc/self/fd`.
    private func lookUp(_ e: FanotifyEvent) -> Place {
        guard let mount = filesystems[e.fsid] else { return .elsewhere }
        let opened = e.directory.withUnsafeBytes { hosttwin_open_by_handle_at(mount, $0.baseAddress, hosttwin_o_path | O_CLOEXEC) }
        guard opened >= 0 else { return .gone }
        defer { close(opened) }
        // A directory removed while something still held it opens, with no name left.
        var st = stat()
        guard fstat(opened, &st) == 0, st.st_nlink > 0 else { return .gone }
        var link = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/fd/\(opened)", &link, Int(PATH_MAX))
        guard n > 0 else { return .gone }
        let seen = String(decoding: link[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let host: String
        if paths.root == "/" { host = seen } else if FileCollector.isUnder(seen, paths.root) {
            let rest = String(seen.dropFirst(paths.root.count))
            host = rest.isEmpty ? "/" : rest
        } else { return .elsewhere }
        return roots.contains { FileCollector.isUnder(host, $0) || FileCollector.isUnder($0, host) } ? .path(host) : .elsewhere
    }
}
