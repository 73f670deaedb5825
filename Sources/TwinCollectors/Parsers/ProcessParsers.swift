import Crypto
import TwinCore
/// The fields HostTwin uses from `/proc/PID/stat`.
public struct PidStat: Sendable, Equatable {
    public var comm: String
    public var state: Character
    public var ppid: Int
    public var utimeTicks: Double
    public var stimeTicks: Double
    public var threads: Int
    public var startTicks: Double
    public var vsizeBytes: Double
    public var rssPages: Double
    /// PF_KTHREAD is set in the flags field.
    public var isKernelThread: Bool
}

/// Parses `/proc/PID/stat`. The command name may contain spaces and parentheses, so the line is split at
/// the last `)`. Returns nil for truncated or garbled input. Works on bytes without allocating (beyond the
/// command name) because it runs for every process at every tick.
public func parsePidStat(_ b: UnsafeBufferPointer<UInt8>) -> PidStat? {
    guard let open = b.firstIndex(of: UInt8(ascii: "(")), let close = b.lastIndex(of: UInt8(ascii: ")")), open < close else { return nil }
    let comm = String(decoding: UnsafeBufferPointer(rebasing: b[(open + 1)..<close]), as: UTF8.self)
    // Field numbers follow proc(5): 3 = state, 4 = ppid, 9 = flags, 14 = utime, 15 = stime,
    // 20 = num_threads, 22 = starttime, 23 = vsize, 24 = rss.
    var field = 2
    var i = close + 1
    var state: UInt8 = 0
    var ppid: UInt64 = 0, flags: UInt64 = 0, utime: UInt64 = 0, stime: UInt64 = 0
    var threads: UInt64 = 0, start: UInt64 = 0, vsize: UInt64 = 0, rss: UInt64 = 0
    var seen = 0
    while i < b.count, field < 24 {
        while i < b.count, b[i] == 32 { i += 1 }
        guard i < b.count, b[i] != 10 else { break }
        field += 1
        if field == 3 {
            state = b[i]
            i += 1
            continue
        }
        var v: UInt64 = 0
        var digits = 0
        var negative = false
        if b[i] == UInt8(ascii: "-") { negative = true; i += 1 }
        while i < b.count, b[i] >= 48, b[i] <= 57 {
            v = v &* 10 &+ UInt64(b[i] - 48)
            digits += 1
            i += 1
        }
        guard digits > 0, i == b.count || b[i] == 32 || b[i] == 10 else { return nil }
        if negative { v = 0 }
        switch field {
        case 4: ppid = v
        case 9: flags = v
        case 14: utime = v
        case 15: stime = v
        case 20: threads = v
        case 22: start = v
        case 23: vsize = v
        case 24: rss = v
        default: break
        }
        seen = field
    }
    guard seen >= 24, state != 0 else { return nil }
    return PidStat(comm: comm, state: Character(Unicode.Scalar(state)), ppid: Int(clamping: ppid),
                   utimeTicks: Double(utime), stimeTicks: Double(stime), threads: Int(clamping: threads),
                   startTicks: Double(start), vsizeBytes: Double(vsize), rssPages: Double(rss),
                   isKernelThread: flags & 0x0020_0000 != 0)
}

/// ``parsePidStat(_:)-(UnsafeBufferPointer<UInt8>)`` on a string (for tests and fixtures).
public func parsePidStat(_ text: String) -> PidStat? {
    var t = text
    return t.withUTF8 { parsePidStat($0) }
}

/// `/proc/PID/io`: bytes read and written at the storage layer and through syscalls.
public struct PidIO: Sendable, Equatable {
    public var readBytes: Double = 0
    public var writeBytes: Double = 0
    public var rchar: Double = 0
    public var wchar: Double = 0
}

/// Parses `/proc/PID/io`; nil when no known field is present.
public func parsePidIO(_ b: UnsafeBufferPointer<UInt8>) -> PidIO? {
    var io = PidIO()
    var seen = false
    let s = ByteScanner(b)
    scanKeyValueLines(s) { _, key, v in
        if s.equals(key, "read_bytes:") { io.readBytes = v; seen = true }
        else if s.equals(key, "write_bytes:") { io.writeBytes = v; seen = true }
        else if s.equals(key, "rchar:") { io.rchar = v; seen = true }
        else if s.equals(key, "wchar:") { io.wchar = v; seen = true }
    }
    return seen ? io : nil
}

/// ``parsePidIO(_:)-(UnsafeBufferPointer<UInt8>)`` on a string.
public func parsePidIO(_ text: String) -> PidIO? { text.withBytes { parsePidIO($0) } }

/// Turns `/proc/PID/cmdline` (NUL-separated, maybe NUL-terminated) into arguments.
public func parseCmdline(_ text: String) -> [String] {
    // Split as bytes: a compiler's command line has thousands of arguments, and splitting the String walks
    // its characters (NUL always ends one, so the parts are the same).
    var parts = text.utf8.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    while parts.last == "" { parts.removeLast() }
    return parts
}

/// The longest command line stored whole (bytes of UTF-8). A linker's or compiler's can run to hundreds of
/// kilobytes of file names (a link of this project: 241,807 characters), and a build's few hundred of them
/// were most of what a busy hour's state history took; ``storedCommand(_:)`` cuts longer ones.
public let commandLimit = 4096

/// `command` as stored: whole up to ``commandLimit`` bytes; longer, its first 3,072 bytes and its last 896
/// (cut at character boundaries) around a marker with its length and the start of its SHA-256, so both ends
/// are kept (what runs, and what a padded command would hide at its end) and two cut commands are equal only
/// when the whole ones are.
public func storedCommand(_ command: String) -> String {
    guard command.utf8.count > commandLimit else { return command } // no copy for the usual command
    let bytes = Array(command.utf8)
    // A UTF-8 continuation byte (10xxxxxx) is not a character's start: move the cuts back / on to one.
    var head = 3072, tail = bytes.count - 896
    while head > 0, bytes[head] & 0xC0 == 0x80 { head -= 1 }
    while tail < bytes.count, bytes[tail] & 0xC0 == 0x80 { tail += 1 }
    let digest = SHA256.hash(data: bytes).prefix(8).hex
    return String(decoding: bytes[..<head], as: UTF8.self) + " …[\(bytes.count) bytes, \(tail - head) cut, sha256 \(digest)…]… "
        + String(decoding: bytes[tail...], as: UTF8.self)
}

/// The systemd service a process runs in, from `/proc/PID/cgroup` (`ID:CONTROLLERS:PATH` lines; the unified
/// hierarchy's `0::` line or cgroup v1's `name=systemd` one): the path's last component when it names a
/// `.service` (`/system.slice/ssh.service` → `ssh.service`); nil for sessions, scopes, containers without
/// systemd and malformed text.
public func parseSystemdUnit(_ text: String) -> String? {
    var v1: String?
    for line in lines(text) {
        let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard f.count == 3, f[0].allSatisfy(\.isNumber), !f[0].isEmpty else { continue }
        guard let last = f[2].split(separator: "/").last, last.hasSuffix(".service"), last.count > ".service".count else { continue }
        if f[0] == "0", f[1].isEmpty { return String(last) }
        if f[1] == "name=systemd" { v1 = String(last) }
    }
    return v1
}

/// Parses `/etc/passwd` into uid → user name.
public func parsePasswd(_ text: String) -> [UInt32: String] {
    var out: [UInt32: String] = [:]
    for line in lines(text) where !line.hasPrefix("#") {
        let f = line.split(separator: ":", omittingEmptySubsequences: false)
        if f.count >= 3, let uid = UInt32(f[2]), out[uid] == nil { out[uid] = String(f[0]) }
    }
    return out
}

/// One local account of `/etc/passwd`.
public struct LocalAccount: Equatable, Sendable {
    public var name: String, uid: UInt32, gid: UInt32, gecos: String, home: String, shell: String
}

/// Parses `/etc/passwd` into its accounts (seven colon-separated fields; malformed lines and comments
/// skipped; a name seen twice keeps its first line, as the C library's lookups do).
public func parsePasswdEntries(_ text: String) -> [LocalAccount] {
    var out: [LocalAccount] = []
    var seen = Set<Substring>()
    for line in lines(text) where !line.hasPrefix("#") && !line.hasPrefix("+") && !line.hasPrefix("-") {
        let f = line.split(separator: ":", omittingEmptySubsequences: false)
        guard f.count == 7, !f[0].isEmpty, let uid = UInt32(f[2]), let gid = UInt32(f[3]), seen.insert(f[0]).inserted else { continue }
        out.append(LocalAccount(name: String(f[0]), uid: uid, gid: gid, gecos: String(f[4]), home: String(f[5]), shell: String(f[6])))
    }
    return out
}

