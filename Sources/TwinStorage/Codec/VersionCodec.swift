import TwinCore

/// The compact encoding of entity versions, for packed blocks on disk and for the wire.
///
/// A block holds versions in time order (by `validFrom`, then kind and key). Strings — kinds, keys,
/// attribute names, string values — are interned once per block. A version whose entity has an earlier
/// version in the block ending where it starts is stored as a delta against it: only the attributes that
/// changed or were removed. Three streams (entity and times, attribute names, attribute values) are
/// written one after another, so like bytes sit together, and the body is deflated when that is smaller:
///
/// Sensitive strings (values of sealed attributes, keys that name a remote address) are not interned with
/// the rest: with a cipher they go to a section of their own, deflated and sealed as one message, so they
/// compress as well as the rest (a value sealed on its own is incompressible ciphertext).
///
/// ```
/// u8 format (1) · u8 flags (bit 0: body deflated, bit 1: sealed section) · uvarint count
///    · [uvarint section size · sealed section] · [uvarint raw body size] · body · u32 crc32
/// section (before sealing): uvarint raw size · deflated (uvarint n, n × (uvarint length, UTF-8))
/// body: strings (uvarint n, n × (uvarint length, UTF-8)) · uvarint |meta| · meta · uvarint |names| · names · values
/// meta, per version: uvarint kind · uvarint key (index × 2, + 1 when in the section) · varint validFrom −
///       previous validFrom · uvarint end (0: open, else 1 + validTo − validFrom)
/// names, per version: uvarint set count · set names · [if a delta: uvarint removed count · removed names]
/// values, per set name: u8 tag (0 string, 1 int, 2 double, 3 false, 4 true, 5 null, 6 sealed) · payload
///       (string: uvarint string index; int: varint; double: u64 bit pattern; sealed: uvarint section index
///       of the value's text form, `s`, `i`, `d`, `b` or `n` then the value)
/// ```
/// The checksum covers everything before it; decoding checks it, every count and every index.
public enum VersionCodec {
    static let format: UInt8 = 1

    /// Encodes `versions` (any order; the block keeps them sorted by start, kind, key). With `sealer`, the
    /// versions are in clear and what it seals goes to the sealed section; nil when that section cannot
    /// be sealed (no key): the caller then stores the versions as stored, sealed value by value.
    public static func encode(_ versions: [EntityVersion], sealer: any AttributeCipher) -> [UInt8]? {
        encode(versions, sealing: sealer)
    }

    /// Encodes `versions` as they are (sealed values, if any, stay sealed strings).
    public static func encode(_ versions: [EntityVersion]) -> [UInt8] { encode(versions, sealing: nil)! }

    private static func encode(_ versions: [EntityVersion], sealing sealer: (any AttributeCipher)?) -> [UInt8]? {
        let sorted = versions.sorted { ($0.validFrom, $0.kind.rawValue, $0.key) < ($1.validFrom, $1.kind.rawValue, $1.key) }
        var strings: [String] = []
        var index: [String: Int] = [:]
        func intern(_ s: String) -> UInt64 {
            if let i = index[s] { return UInt64(i) }
            index[s] = strings.count
            strings.append(s)
            return UInt64(strings.count - 1)
        }
        var secrets: [String] = []
        var secretIndex: [String: Int] = [:]
        func internSecret(_ s: String) -> UInt64 {
            if let i = secretIndex[s] { return UInt64(i) }
            secretIndex[s] = secrets.count
            secrets.append(s)
            return UInt64(secrets.count - 1)
        }
        struct EntityRef: Hashable { var kind: EntityKind; var key: String }
        var previous: [EntityRef: EntityVersion] = [:]
        var meta = ByteWriter(capacity: sorted.count * 8)
        var names = ByteWriter(capacity: sorted.count * 8)
        var values = ByteWriter(capacity: sorted.count * 16)
        var lastFrom: Int64 = 0
        for v in sorted {
            meta.uvarint(intern(v.kind.rawValue))
            if let sealer, sealer.isSealed(v.kind, key: v.key) { meta.uvarint(internSecret(v.key) << 1 | 1) } else { meta.uvarint(intern(v.key) << 1) }
            meta.varint(v.validFrom &- lastFrom)
            lastFrom = v.validFrom
            meta.uvarint(v.validTo.map { UInt64(bitPattern: 1 &+ ($0 &- v.validFrom)) } ?? 0)
            let ref = EntityRef(kind: v.kind, key: v.key)
            let base = previous[ref].flatMap { $0.validTo == v.validFrom ? $0.attributes : nil }
            let set = v.attributes.filter { base?[$0.key] != $0.value }.sorted { $0.key < $1.key }
            names.uvarint(UInt64(set.count))
            for (name, value) in set {
                names.uvarint(intern(name))
                if let sealer, value != .null, sealer.isSealed(v.kind, attribute: name) {
                    values.u8(6)
                    values.uvarint(internSecret(secretText(value)))
                    continue
                }
                switch value {
                case .string(let s): values.u8(0); values.uvarint(intern(s))
                case .int(let i): values.u8(1); values.varint(i)
                case .double(let d): values.u8(2); values.u64(d.bitPattern)
                case .bool(let b): values.u8(b ? 4 : 3)
                case .null: values.u8(5)
                }
            }
            if let base {
                let removed = base.keys.filter { v.attributes[$0] == nil }.sorted()
                names.uvarint(UInt64(removed.count))
                for r in removed { names.uvarint(intern(r)) }
            }
            previous[ref] = v
        }
        var body = ByteWriter(capacity: meta.bytes.count + names.bytes.count + values.bytes.count + strings.count * 12)
        body.uvarint(UInt64(strings.count))
        for s in strings {
            let utf8 = Array(s.utf8)
            body.uvarint(UInt64(utf8.count))
            body.append(utf8)
        }
        body.uvarint(UInt64(meta.bytes.count))
        body.append(meta.bytes)
        body.uvarint(UInt64(names.bytes.count))
        body.append(names.bytes)
        body.append(values.bytes)

        var section: [UInt8]?
        if !secrets.isEmpty {
            var clear = ByteWriter(capacity: secrets.count * 24)
            clear.uvarint(UInt64(secrets.count))
            for s in secrets {
                let utf8 = Array(s.utf8)
                clear.uvarint(UInt64(utf8.count))
                clear.append(utf8)
            }
            var packed = ByteWriter(capacity: clear.bytes.count / 2 + 8)
            packed.uvarint(UInt64(clear.bytes.count))
            packed.append(Zlib.deflate(clear.bytes, level: 9) ?? [])
            guard let sealed = sealer?.sealSection(packed.bytes) else { return nil }
            section = sealed
        }
        var out = ByteWriter(capacity: body.bytes.count / 3 + (section?.count ?? 0) + 16)
        out.u8(format)
        let sectionFlag: UInt8 = section == nil ? 0 : 2
        func writeSection() {
            guard let section else { return }
            out.uvarint(UInt64(section.count))
            out.append(section)
        }
        if body.bytes.count > 64, let z = Zlib.deflate(body.bytes, level: 9), z.count + 4 < body.bytes.count {
            out.u8(1 | sectionFlag)
            out.uvarint(UInt64(sorted.count))
            writeSection()
            out.uvarint(UInt64(body.bytes.count))
            out.append(z)
        } else {
            out.u8(sectionFlag)
            out.uvarint(UInt64(sorted.count))
            writeSection()
            out.append(body.bytes)
        }
        out.u32(Zlib.crc32(out.bytes))
        return out.bytes
    }

    /// The sealed section of a block, if it has one (to see whether it is under the current key).
    public static func sealedSection(of blob: [UInt8]) throws -> [UInt8]? {
        try blob.withUnsafeBytes { all in
            var r = ByteReader(all)
            guard try r.u8() == format else { throw ChunkError.corrupt("unknown version block format") }
            guard try r.u8() & 2 != 0 else { return nil }
            _ = try r.uvarint()
            return Array(try r.take(try r.count(limit: r.remaining)))
        }
    }

    /// Decodes a block; throws ``ChunkError`` on anything damaged (checksum, counts, indexes, truncation).
    /// Sealed strings are opened with `sealer`; without it (or its key) values read as masked (`***`) and
    /// keys as `***#N`, unique within the block.
    public static func decode(_ blob: [UInt8], sealer: (any AttributeCipher)? = nil) throws -> [EntityVersion] {
        try blob.withUnsafeBytes { all in
            let payload = try ChunkCodec.checked(all, minimum: 7, "version block checksum mismatch")
            var head = ByteReader(payload)
            guard try head.u8() == format else { throw ChunkError.corrupt("unknown version block format") }
            let flags = try head.u8()
            // Each version costs at least 4 bytes of meta; a count beyond that is damage, not a reason to allocate.
            let count = try head.count(limit: 1 << 26)
            var secrets: Secrets = .none
            if flags & 2 != 0 {
                let sealed = Array(try head.take(try head.count(limit: head.remaining)))
                if let packed = sealer?.openSection(sealed) { secrets = .clear(try openedSection(packed)) } else { secrets = .masked }
            }
            if flags & 1 != 0 {
                let rawSize = try head.count(limit: 1 << 30)
                let body = try Zlib.inflate(UnsafeRawBufferPointer(rebasing: payload[head.pos...]), rawCount: rawSize)
                return try body.withUnsafeBytes { try decodeBody(ByteReader($0), count: count, secrets: secrets) }
            }
            return try decodeBody(ByteReader(UnsafeRawBufferPointer(rebasing: payload[head.pos...])), count: count, secrets: secrets)
        }
    }

    /// The sealed section's strings: opened, or unreadable (masked).
    enum Secrets {
        case none, masked
        case clear([String])
    }

    /// The text form of a sealed value: its type, then the value.
    static func secretText(_ v: AttributeValue) -> String {
        switch v {
        case .string(let s): "s" + s
        case .int(let i): "i\(i)"
        case .double(let d): "d\(d.bitPattern)"
        case .bool(let b): b ? "bt" : "bf"
        case .null: "n"
        }
    }

    static func value(secretText t: String) throws -> AttributeValue {
        let rest = String(t.dropFirst())
        switch t.first {
        case "s": return .string(rest)
        case "i": if let i = Int64(rest) { return .int(i) }
        case "d": if let b = UInt64(rest) { return .double(Double(bitPattern: b)) }
        case "b": return .bool(rest == "t")
        case "n": return .null
        default: break
        }
        throw ChunkError.corrupt("sealed value of unknown form")
    }

    static func openedSection(_ packed: [UInt8]) throws -> [String] {
        try packed.withUnsafeBytes { raw in
            var r = ByteReader(raw)
            let size = try r.count(limit: 1 << 30)
            let clear = try Zlib.inflate(try r.take(r.remaining), rawCount: size)
            return try clear.withUnsafeBytes { try strings(ByteReader($0)).0 }
        }
    }

    /// A string table (uvarint n, n × (uvarint length, UTF-8)) and the reader after it.
    static func strings(_ reader: ByteReader) throws -> ([String], ByteReader) {
        var r = reader
        let n = try r.count(limit: r.remaining)
        var out: [String] = []
        out.reserveCapacity(n)
        for _ in 0..<n {
            let len = try r.count(limit: r.remaining)
            out.append(String(decoding: try r.take(len), as: UTF8.self))
        }
        return (out, r)
    }

    private static func decodeBody(_ reader: ByteReader, count: Int, secrets: Secrets) throws -> [EntityVersion] {
        let (strings, rest) = try strings(reader)
        var r = rest
        func string(_ i: UInt64) throws -> String {
            guard i < UInt64(strings.count) else { throw ChunkError.corrupt("string index \(i) out of range") }
            return strings[Int(i)]
        }
        func secret(_ i: UInt64) throws -> String? {
            switch secrets {
            case .none: throw ChunkError.corrupt("sealed string without a sealed section")
            case .masked: return nil
            case .clear(let list):
                guard i < UInt64(list.count) else { throw ChunkError.corrupt("sealed string index \(i) out of range") }
                return list[Int(i)]
            }
        }
        let metaLen = try r.count(limit: r.remaining)
        guard count <= metaLen / 4 + 1 else { throw ChunkError.corrupt("version count \(count) exceeds what the block holds") }
        var meta = ByteReader(try r.take(metaLen))
        let namesLen = try r.count(limit: r.remaining)
        var names = ByteReader(try r.take(namesLen))
        var values = ByteReader(try r.take(r.remaining))
        struct EntityRef: Hashable { var kind: UInt64; var key: UInt64 }
        var previous: [EntityRef: Int] = [:]
        var out: [EntityVersion] = []
        out.reserveCapacity(count)
        var from: Int64 = 0
        for _ in 0..<count {
            let kindIndex = try meta.uvarint(), keyField = try meta.uvarint()
            let key = keyField & 1 == 0 ? try string(keyField >> 1) : try secret(keyField >> 1) ?? "\(Redactor.mask)#\(keyField >> 1)"
            guard let kind = EntityKind(rawValue: try string(kindIndex)) else { throw ChunkError.corrupt("unknown entity kind") }
            from = from &+ (try meta.varint())
            let end = try meta.uvarint()
            let to: Int64? = end == 0 ? nil : from &+ Int64(bitPattern: end &- 1)
            let ref = EntityRef(kind: kindIndex, key: keyField)
            let base = previous[ref].flatMap { out[$0].validTo == from ? out[$0].attributes : nil }
            var attrs = base ?? [:]
            let setCount = try names.count(limit: names.remaining)
            attrs.reserveCapacity(setCount)
            for _ in 0..<setCount {
                let name = try string(try names.uvarint())
                switch try values.u8() {
                case 0: attrs[name] = .string(try string(try values.uvarint()))
                case 1: attrs[name] = .int(try values.varint())
                case 2: attrs[name] = .double(Double(bitPattern: try values.u64()))
                case 3: attrs[name] = .bool(false)
                case 4: attrs[name] = .bool(true)
                case 5: attrs[name] = .null
                case 6: attrs[name] = try secret(try values.uvarint()).map(value(secretText:)) ?? .string(Redactor.mask)
                case let tag: throw ChunkError.corrupt("unknown value tag \(tag)")
                }
            }
            if base != nil {
                for _ in 0..<(try names.count(limit: names.remaining)) { attrs[try string(try names.uvarint())] = nil }
            }
            previous[ref] = out.count
            out.append(EntityVersion(kind: kind, key: key, attributes: attrs, validFrom: from, validTo: to))
        }
        guard meta.remaining == 0, names.remaining == 0, values.remaining == 0 else { throw ChunkError.corrupt("version block has trailing bytes") }
        return out
    }
}
