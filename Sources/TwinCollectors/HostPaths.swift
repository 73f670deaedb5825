#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the collectors look: the proc and sys trees and the root file system. Tests point these at
/// fixture trees; `--root DIR` sets all three as `DIR/proc`, `DIR/sys` and `DIR`.
public struct HostPaths: Sendable, Hashable {
    public var proc: String
    public var sys: String
    public var root: String

    public init(proc: String = "/proc", sys: String = "/sys", root: String = "/") {
        self.proc = proc
        self.sys = sys
        self.root = root
    }

    /// All three under one directory, as node_exporter's fixtures are laid out.
    public static func under(_ dir: String) -> HostPaths {
        HostPaths(proc: dir + "/proc", sys: dir + "/sys", root: dir)
    }

    public func proc(_ rel: String) -> String { proc + "/" + rel }
    public func sys(_ rel: String) -> String { sys + "/" + rel }
    /// A path under the root file system (`/etc/os-release` → `ROOT/etc/os-release`).
    public func root(_ abs: String) -> String { root == "/" ? abs : root + abs }
}

/// Reads small kernel files with plain POSIX calls into one reused buffer: /proc files report size 0, and
/// a read per tick of many of them must not allocate more than the resulting string.
///
/// Not thread-safe: each collector loop owns one.
public final class FileReader {
    private var buffer: [UInt8]
    private let capacity: Int

    /// Contents read through ``readShared(_:)`` during the current tick.
    private var tickCache: [String: String?] = [:]
    /// Descriptors kept open by ``withHeldBytes(_:_:)``, by path.
    private var held: [String: Int32] = [:]
    /// The most descriptors held; files past them are opened at each read.
    static let heldLimit = 64

    public init(capacity: Int = 64 * 1024) {
        self.capacity = capacity
        buffer = [UInt8](repeating: 0, count: capacity)
    }

    deinit {
        for fd in held.values { close(fd) }
    }

    /// Reads a file that several collectors use in the same tick (sockstat, for one) once per tick.
    public func readShared(_ path: String) -> String? {
        if let cached = tickCache[path] { return cached }
        let text = readHeld(path)
        tickCache[path] = .some(text)
        return text
    }

    /// Like ``withBytes(_:_:)`` for a kernel file read at every tick (/proc/stat, an interface's
    /// operstate): its descriptor stays open and each read starts again at offset 0 (`pread`), which makes
    /// procfs and sysfs generate the file afresh — about a tenth of an open, a read and a close here
    /// (docs/ARCHITECTURE.md, "Reading /proc"). Only files under /proc and /sys are held: a fixture tree's
    /// file may be replaced by a rename, which a held descriptor would not see. A failed read (an
    /// interface that went away) closes the descriptor and opens the path once more.
    public func withHeldBytes<T>(_ path: String, _ body: (UnsafeBufferPointer<UInt8>) -> T) -> T? {
        guard path.hasPrefix("/proc/") || path.hasPrefix("/sys/") else { return withBytes(path, body) }
        if let fd = held[path] {
            if let result = readAll(fd, positional: true, body) { return result }
            close(fd)
            held[path] = nil
        }
        guard held.count < Self.heldLimit else { return withBytes(path, body) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        held[path] = fd
        guard let result = readAll(fd, positional: true, body) else {
            close(fd)
            held[path] = nil
            return nil
        }
        return result
    }

    /// Whether a held file may have changed since it was last read: false only when its descriptor is
    /// held and the kernel has not flagged it (`POLLPRI`) since. The mount tables (`/proc/PID/mountinfo`)
    /// are flagged when a mount, unmount or remount changes them; a file the kernel never flags must not
    /// be asked about. A file not held (a fixture tree's) may always have changed.
    public func heldFileMayHaveChanged(_ path: String) -> Bool {
        guard let fd = held[path] else { return true }
        var p = pollfd(fd: fd, events: Int16(POLLPRI), revents: 0)
        return poll(&p, 1, 0) != 0
    }

    /// The text of a file read at every tick, through a held descriptor (``withHeldBytes(_:_:)``).
    public func readHeld(_ path: String) -> String? {
        withHeldBytes(path) { String(decoding: $0, as: UTF8.self) }
    }

    /// Forgets the shared reads of the previous tick.
    public func startTick() { tickCache.removeAll(keepingCapacity: true) }

    /// The bytes of a file, or nil when it is missing or unreadable. Never throws: a vanished
    /// process or an absent sensor is "no data".
    public func read(_ path: String) -> String? {
        withBytes(path) { String(decoding: $0, as: UTF8.self) }
    }

    /// Calls `body` with the file's bytes (valid only during the call), or returns nil when unreadable.
    public func withBytes<T>(_ path: String, _ body: (UnsafeBufferPointer<UInt8>) -> T) -> T? {
        withBytes(at: AT_FDCWD, path, body)
    }

    /// Like ``withBytes(_:_:)`` for a path relative to an open directory (`openat`): per-process files are
    /// read as `PID/stat` under one `/proc` descriptor, without building absolute paths.
    public func withBytes<T>(at dir: Int32, _ path: String, _ body: (UnsafeBufferPointer<UInt8>) -> T) -> T? {
        let fd = openat(dir, path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { close(fd) }
        return readAll(fd, positional: false, body)
    }

    /// Reads `fd` to its end into the buffer and calls `body` with the bytes; `positional` reads from
    /// offset 0 with `pread` (a held descriptor), else from where the descriptor stands. Nil on an error.
    private func readAll<T>(_ fd: Int32, positional: Bool, _ body: (UnsafeBufferPointer<UInt8>) -> T) -> T? {
        var total = 0
        while true {
            if total == buffer.count {
                let limit = 64 * 1024 * 1024
                if buffer.count >= limit { return nil }
                // A regular file says how large it is: grow once to that (and a byte to see its end) rather
                // than doubling, which holds up to twice the file and copies it at each step. Files under
                // /proc say 0 and double.
                var st = stat()
                let size = fstat(fd, &st) == 0 && st.st_mode & S_IFMT == S_IFREG ? Int(st.st_size) + 1 : 0
                let grown = min(size > buffer.count ? size : 2 * buffer.count, limit)
                buffer.append(contentsOf: repeatElement(0, count: grown - buffer.count))
            }
            // Ask for 4 KiB first: sysctl files under /proc/sys make the kernel allocate (and clear) a
            // buffer as large as the request, and most files fit. Larger files continue in big reads.
            let want = total == 0 ? min(4096, buffer.count) : buffer.count - total
            let n = buffer.withUnsafeMutableBytes { raw in
                positional ? pread(fd, raw.baseAddress! + total, want, off_t(total)) : Glibc.read(fd, raw.baseAddress! + total, want)
            }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { break }
            total += n
        }
        let result = buffer.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[0..<total])) }
        // A large file read now and then (dpkg's status, megabytes) does not keep its buffer between reads.
        if buffer.count > 4 * capacity { buffer = [UInt8](repeating: 0, count: capacity) }
        return result
    }

    /// The target of a symbolic link, or nil.
    public func readLink(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: 256)
        let n = readlink(path, &buf, buf.count)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Names in a directory with their inode numbers (from `readdir`, no extra system call), or nil.
    public func listWithInodes(_ path: String) -> [(name: String, inode: UInt64)]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var out: [(name: String, inode: UInt64)] = []
        while let ent = readdir(dir) {
            let name = ent.entryName
            if name != "." && name != ".." { out.append((name, ent.entryInode)) }
        }
        return out
    }

    /// Names in a directory (without `.` and `..`), or nil when it cannot be listed.
    public func list(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var out: [String] = []
        while let ent = readdir(dir) {
            let name = ent.entryName
            if name != "." && name != ".." { out.append(name) }
        }
        return out
    }

    /// `stat(2)` of a path, or nil.
    public func status(_ path: String) -> stat? {
        var st = stat()
        return stat(path, &st) == 0 ? st : nil
    }

    /// `fstatat(2)` of a path relative to an open directory, or nil.
    public func status(at dir: Int32, _ path: String) -> stat? {
        var st = stat()
        return fstatat(dir, path, &st, 0) == 0 ? st : nil
    }

    /// Opens a directory for the `at:` variants; the caller closes it. -1 when it cannot be opened.
    public func openDirectory(_ path: String) -> Int32 {
        open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    }
}
