import Crypto
import Foundation
import Synchronization
import TwinCore

/// The keys of a data directory (`DATA_DIR/keys`, 0700): data keys `<id>.key` (32 random bytes, 0600)
/// for AES-256-GCM, the id of the current one in `current`, and `hash.key` for the policy's keyed hashes
/// (kept across rotations, so hashed values stay comparable). A process that cannot read the directory
/// (another user on a shared store) has no keys and sees sealed values as stored.
///
/// Sealed values are `enc:<key id>:<base64 of nonce, ciphertext and tag>`. The nonce is derived from the
/// value (HMAC of the key, the attribute and the plaintext), so one value seals to one text under one
/// key: versions and diffs compare as before, at the price of showing that two stored values are equal.
public final class KeyRing: Sendable {
    public let directory: String
    private struct State { var keys: [String: [UInt8]] = [:]; var current: String?; var hashKey: [UInt8]?; var checkedAt: Int64 = 0; var currentStamp: Int64 = -1 }
    private let state = Mutex(State())
    /// Values recently opened, by sealed text and context (sealing is deterministic, so the same text
    /// comes back with every read of the same state): reads skip base64, AES-GCM and JSON. At most 4,096,
    /// and at most ``openedBytesLimit`` of text in all: sealed command lines run to kilobytes each.
    private let opened = Mutex<(values: [String: AttributeValue], bytes: Int)>(([:], 0))
    static let openedBytesLimit = 512 * 1024
    static let prefix = "enc:"

    /// The key ring of `dataDir`; with `create`, the directory and a first key are made when missing.
    public init(dataDir: String, create: Bool) throws {
        directory = dataDir + "/keys"
        if create {
            do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) } catch {
                throw TwinError.unavailable("cannot create the key directory \(directory): \(error.localizedDescription)")
            }
            if (try? String(contentsOfFile: directory + "/current", encoding: .utf8)) == nil { _ = try rotate() }
            if !FileManager.default.fileExists(atPath: directory + "/hash.key") { try Self.writeKey(directory + "/hash.key") }
        }
        reload(force: true)
    }

    /// Whether any key could be read (an owner's process), so sealed values can be opened.
    public var canOpen: Bool { state.withLock { !$0.keys.isEmpty } }
    /// The id new values are sealed under.
    public var currentID: String? { reload(force: false); return state.withLock { $0.current } }
    /// Ids of every key present.
    public var keyIDs: [String] { state.withLock { $0.keys.keys.sorted() } }

    /// Re-reads the directory at most once a second, so a running writer follows `hosttwin key rotate`.
    private func reload(force: Bool) {
        let now = TwinTime.nowMillis()
        var st = stat()
        let stamp = stat(directory + "/current", &st) == 0 ? Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec) : -1
        let due = state.withLock { s -> Bool in
            if !force, now - s.checkedAt < 1000 { return false }
            s.checkedAt = now
            return force || stamp != s.currentStamp
        }
        guard due else { return }
        var keys: [String: [UInt8]] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(".key") && name != "hash.key" {
            if let data = FileManager.default.contents(atPath: directory + "/" + name), data.count == 32 { keys[String(name.dropLast(4))] = [UInt8](data) }
        }
        let current = (try? String(contentsOfFile: directory + "/current", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        let hashKey = FileManager.default.contents(atPath: directory + "/hash.key").map { [UInt8]($0) }
        state.withLock { s in (s.keys, s.current, s.hashKey, s.currentStamp) = (keys, current, hashKey, stamp) }
    }

    static func writeKey(_ path: String) throws {
        let key = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw TwinError.unavailable("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard write(fd, key, key.count) == key.count, fsync(fd) == 0 else { throw TwinError.unavailable("cannot write \(path)") }
    }

    /// Makes a new data key and makes it current; returns its id. Older keys stay until retired.
    @discardableResult
    public func rotate() throws -> String {
        let id = "k\(TwinTime.nowMillis())"
        try Self.writeKey(directory + "/\(id).key")
        let tmp = directory + "/current.tmp"
        try? FileManager.default.removeItem(atPath: tmp)
        guard FileManager.default.createFile(atPath: tmp, contents: Data((id + "\n").utf8), attributes: [.posixPermissions: 0o600]),
              rename(tmp, directory + "/current") == 0 else { throw TwinError.unavailable("cannot write \(directory)/current") }
        reload(force: true)
        return id
    }

    /// Deletes every key but the current one (after their values were re-sealed).
    public func deleteRetired() throws -> [String] {
        reload(force: true)
        let (keys, current) = state.withLock { ($0.keys.keys.sorted(), $0.current) }
        var gone: [String] = []
        for id in keys where id != current {
            try FileManager.default.removeItem(atPath: directory + "/\(id).key")
            gone.append(id)
        }
        reload(force: true)
        return gone
    }

    /// Whether `value` is sealed, and under which key.
    public static func sealedKeyID(_ value: AttributeValue) -> String? {
        guard case .string(let s) = value, s.hasPrefix(prefix) else { return nil }
        let rest = s.dropFirst(prefix.count)
        guard let colon = rest.firstIndex(of: ":") else { return nil }
        return String(rest[..<colon])
    }

    /// `value` sealed under the current key (the value itself when there is none); `context` (kind and
    /// attribute) is bound to the ciphertext, so a value cannot be moved to another attribute.
    public func seal(_ value: AttributeValue, context: String) -> AttributeValue {
        guard let id = currentID, let key = state.withLock({ $0.keys[id] }), let plain = SealedPlaintext.encode(value) else { return value }
        let k = SymmetricKey(data: key)
        let nonceBytes = Array(HMAC<SHA256>.authenticationCode(for: Array(context.utf8) + [0] + Array(plain), using: k).prefix(12))
        guard let nonce = try? AES.GCM.Nonce(data: nonceBytes),
              let box = try? AES.GCM.seal(plain, using: k, nonce: nonce, authenticating: Array(context.utf8)),
              let combined = box.combined else { return value }
        return .string(Self.prefix + id + ":" + combined.base64EncodedString())
    }

    /// The value inside a sealed one; nil when it is not sealed, its key is absent or it was tampered with.
    public func open(_ value: AttributeValue, context: String) -> AttributeValue? {
        guard let id = Self.sealedKeyID(value), case .string(let s) = value, let key = state.withLock({ $0.keys[id] }) else { return nil }
        let memo = context + "\u{0}" + s
        if let hit = opened.withLock({ $0.values[memo] }) { return hit }
        guard let data = Data(base64Encoded: String(s.dropFirst(Self.prefix.count + id.count + 1))),
              let box = try? AES.GCM.SealedBox(combined: data),
              let plain = try? AES.GCM.open(box, using: SymmetricKey(data: key), authenticating: Array(context.utf8)),
              let clear = SealedPlaintext.decode(plain) else { return nil }
        var bytes = memo.utf8.count + 16
        if case .string(let text) = clear { bytes += text.utf8.count }
        opened.withLock { o in
            if o.values.count >= 4096 || o.bytes + bytes > Self.openedBytesLimit { o = ([:], 0) }
            o.values[memo] = clear
            o.bytes += bytes
        }
        return clear
    }

    /// `bytes` sealed under the current key with a random nonce: `key id · 0x00 · nonce, ciphertext, tag`
    /// (AES-GCM, `context` authenticated); nil when there is no current key.
    public func sealBytes(_ bytes: [UInt8], context: String) -> [UInt8]? {
        guard let id = currentID, let key = state.withLock({ $0.keys[id] }),
              let box = try? AES.GCM.seal(bytes, using: SymmetricKey(data: key), authenticating: Array(context.utf8)),
              let combined = box.combined else { return nil }
        return Array(id.utf8) + [0] + Array(combined)
    }

    /// What `sealBytes` sealed; nil when its key is absent or the bytes were tampered with.
    public func openBytes(_ sealed: [UInt8], context: String) -> [UInt8]? {
        guard let id = Self.keyID(ofSealedBytes: sealed), let key = state.withLock({ $0.keys[id] }),
              let box = try? AES.GCM.SealedBox(combined: Data(sealed[(id.utf8.count + 1)...])),
              let plain = try? AES.GCM.open(box, using: SymmetricKey(data: key), authenticating: Array(context.utf8)) else { return nil }
        return Array(plain)
    }

    /// The key id that `sealBytes` output names.
    public static func keyID(ofSealedBytes sealed: [UInt8]) -> String? {
        guard let zero = sealed.prefix(64).firstIndex(of: 0), zero > 0 else { return nil }
        return String(decoding: sealed[..<zero], as: UTF8.self)
    }

    /// A keyed hash of `value` (`h:` and 16 hex digits): equal values hash equal, nothing else is revealed.
    public func hash(_ value: AttributeValue, context: String) -> AttributeValue {
        guard let key = state.withLock({ $0.hashKey }) else { return .string(Redactor.mask) }
        let mac = HMAC<SHA256>.authenticationCode(for: Array((context + "\u{0}" + value.description).utf8), using: SymmetricKey(data: key))
        return .string("h:" + Array(mac.prefix(8)).hex)
    }
}

/// The plaintext of a sealed value: the value's JSON, as `JSONEncoder` writes it (the nonce is derived from
/// it, so the same value must give the same bytes in every version). Strings of printable ASCII, integers,
/// booleans and null — nearly every sealed value (addresses, command lines) — are written and read here
/// without Foundation's coders, which cost more than the AES-GCM around them; anything else goes through them.
enum SealedPlaintext {
    static func encode(_ value: AttributeValue) -> [UInt8]? {
        switch value {
        case .string(let s) where s.utf8.allSatisfy(isPlain):
            var out: [UInt8] = [0x22]
            out.reserveCapacity(s.utf8.count + 2)
            for b in s.utf8 {
                if b == slash { out.append(backslash) } // JSONEncoder writes "/" as "\/"
                out.append(b)
            }
            out.append(0x22)
            return out
        case .int(let i): return Array(String(i).utf8)
        case .bool(let b): return Array((b ? "true" : "false").utf8)
        case .null: return Array("null".utf8)
        default: return (try? JSONEncoder().encode(value)).map { Array($0) }
        }
    }

    static func decode(_ plain: Data) -> AttributeValue? {
        let bytes = [UInt8](plain)
        if bytes.count >= 2, bytes.first == 0x22, bytes.last == 0x22, let text = plainString(bytes.dropFirst().dropLast()) {
            return .string(text)
        }
        switch bytes {
        case Array("true".utf8): return .bool(true)
        case Array("false".utf8): return .bool(false)
        case Array("null".utf8): return .null
        default: break
        }
        // An integer: JSON's digits (no leading zero but 0 itself), as AttributeValue decodes a whole number.
        let digits = bytes.first == 0x2D ? bytes.dropFirst() : bytes[...]
        if !digits.isEmpty, digits.count <= 19, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), digits.first != 0x30 || digits.count == 1,
           let i = Int64(String(decoding: bytes, as: UTF8.self)) {
            return .int(i)
        }
        return try? JSONDecoder().decode(AttributeValue.self, from: plain)
    }

    /// The string between the quotes when it holds printable ASCII only, with no escape but "\/"; else nil.
    private static func plainString(_ inner: ArraySlice<UInt8>) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(inner.count)
        var escaped = false
        for b in inner {
            if escaped {
                guard b == slash else { return nil }
                out.append(b)
                escaped = false
            } else if b == backslash {
                escaped = true
            } else {
                guard isPlain(b), b != slash else { return nil }
                out.append(b)
            }
        }
        return escaped ? nil : String(decoding: out, as: UTF8.self)
    }

    private static let slash: UInt8 = 0x2F, backslash: UInt8 = 0x5C

    /// Printable ASCII that JSON writes as itself (the slash escaped): not a quote or a backslash.
    private static func isPlain(_ b: UInt8) -> Bool { b >= 0x20 && b < 0x7F && b != 0x22 && b != backslash }
}
