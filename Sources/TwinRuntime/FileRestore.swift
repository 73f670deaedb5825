import Crypto
import Foundation
import TwinCore
import TwinSecurity
import TwinStorage

/// The twin's rollback of a configuration file: the text a watched file had at a time T, written back
/// atomically with its owner and mode — refused when the file on disk is no longer what the twin last saw
/// (someone changed it since, and the twin has not recorded that yet), when the path was not watched, or
/// when only its hash was kept (binary or larger than 64 KiB).
public enum FileRestore {
    /// What a restore would do.
    public struct Plan: Sendable {
        public var path: String
        /// The version restored (valid at the time asked for).
        public var version: EntityVersion
        public var text: String
        public var mode: UInt32
        public var uid: UInt32
        public var gid: UInt32
        /// The file's text on disk now (nil: absent, or not text).
        public var current: String?
        /// Unified diff from the file on disk to the version restored.
        public var diff: String
    }

    /// The version of `path` at `at` in a store of this host, or nil.
    public static func version(_ store: TwinStore, path: String, at: Int64, host: String? = nil) throws -> EntityVersion? {
        try store.state(at: at, kinds: [.files]).first { v in
            v.attributes["path"] == .string(path) && (host.map { v.attributes["host"] == .string($0) } ?? true)
        }
    }

    /// A version's text, or an error saying why it has none to give.
    public static func text(of v: EntityVersion, path: String) throws -> String {
        if let value = v.attributes["content"] ?? v.attributes["secret_content"], case .string(let s) = value {
            if s == Redactor.mask || KeyRing.sealedKeyID(value) != nil {
                throw TwinError.unavailable("\(path) is sensitive: its text is sealed and the keys of this data directory cannot be read by this user (run as the twin's user or root)")
            }
            return s
        }
        if v.attributes["type"] != "file" { throw TwinError.badInput("\(path) is a \(v.attributes["type"]?.description ?? "?"), not a file") }
        throw TwinError.unavailable("\(path): only its hash was kept at \(TwinTime.rfc3339(v.validFrom)) (binary, or larger than 64 KiB)")
    }

    /// Plans restoring `path` to its version at `at`. Nothing is written.
    public static func plan(_ store: TwinStore, path: String, at: Int64) throws -> Plan {
        guard path.hasPrefix("/"), !path.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else {
            throw TwinError.badInput("\(path): give an absolute path without . or .. parts")
        }
        guard let v = try version(store, path: path, at: at) else {
            throw TwinError.badInput("the twin has no version of \(path) at \(TwinTime.rfc3339(at)) (`hosttwin files list` shows the watched files; `run --watch PATH` watches more)")
        }
        if v.attributes["host"] != nil { throw TwinError.badInput("this store is a hub's: restore runs on the host itself, with its own data directory") }
        guard v.attributes["watch"] == "config" else { throw TwinError.badInput("\(path) is not under a watched path (only watched configuration is restored)") }
        let text = try Self.text(of: v, path: path)
        // The twin's last version: as of its last observation (a stopped twin's is its last before the stop).
        let latest = try version(store, path: path, at: min(TwinTime.nowMillis(), try store.lastTick() ?? .max))
        let disk = try? Data(contentsOf: URL(fileURLWithPath: path))
        let diskHash = disk.map { SHA256.hash(data: $0).hex }
        switch (latest?.attributes["sha256"]?.description, diskHash) {
        case (nil, nil): break
        case (let twin?, let now?) where twin == now: break
        case (let twin, let now):
            throw TwinError.unavailable("\(path) changed since the twin's last version (on disk: \(now.map { "sha256 " + $0.prefix(12) } ?? "absent"); twin: \(twin.map { "sha256 " + $0.prefix(12) } ?? "absent")); let the twin record it first, then restore")
        }
        guard let mode = v.attributes["mode"].flatMap({ UInt32($0.description, radix: 8) }),
              let uid = v.attributes["uid"]?.intValue, let gid = v.attributes["gid"]?.intValue else {
            throw TwinError.unavailable("\(path): its version at \(TwinTime.rfc3339(at)) lacks mode or owner")
        }
        let current = disk.flatMap { String(data: $0, encoding: .utf8) }
        return Plan(path: path, version: v, text: text, mode: mode, uid: UInt32(truncatingIfNeeded: uid), gid: UInt32(truncatingIfNeeded: gid),
                    current: current, diff: TextDiff.unified(current ?? "", text, from: path + " (now)", to: path + " (\(TwinTime.rfc3339(v.validFrom)))"))
    }

    /// Writes the plan: a new file beside the old one (created exclusively, owner and mode set, synced),
    /// renamed over it, and the directory synced. The hash on disk is checked once more just before.
    public static func apply(_ plan: Plan) throws {
        let dir = (plan.path as NSString).deletingLastPathComponent
        let name = (plan.path as NSString).lastPathComponent
        let tmp = dir + "/.\(name).hosttwin-restore-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw TwinError.unavailable("cannot create \(tmp): \(String(cString: strerror(errno)))") }
        var written = false
        defer { if !written { unlink(tmp) } }
        do {
            defer { close(fd) }
            let bytes = Array(plan.text.utf8)
            var off = 0
            while off < bytes.count {
                let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if n < 0 { if errno == EINTR { continue }; throw TwinError.unavailable("writing \(tmp): \(String(cString: strerror(errno)))") }
                off += n
            }
            guard fchown(fd, plan.uid, plan.gid) == 0 else { throw TwinError.unavailable("chown \(tmp) to \(plan.uid):\(plan.gid): \(String(cString: strerror(errno)))") }
            guard fchmod(fd, mode_t(plan.mode & 0o7777)) == 0, fsync(fd) == 0 else { throw TwinError.unavailable("\(tmp): \(String(cString: strerror(errno)))") }
        }
        let now = (try? Data(contentsOf: URL(fileURLWithPath: plan.path))).flatMap { String(data: $0, encoding: .utf8) }
        guard now == plan.current else { throw TwinError.unavailable("\(plan.path) changed while restoring; nothing written") }
        guard rename(tmp, plan.path) == 0 else { throw TwinError.unavailable("rename to \(plan.path): \(String(cString: strerror(errno)))") }
        written = true
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
