import TwinCore

/// The compact encoding of entity versions, for packed blocks on disk and for the wire.
///
/// A block holds versions in time order (by `validFrom`, then kind and key). Strings — kinds, keys,
/// attribute names, string values — are interned once per block. A version whose entity has an earlier
/// version in the block ending where it starts is stored as a delta against it: only the attributes that
/// changed or were removed. Each version names its *shape* (the attribute names it sets and removes; a
/// block has few), and the values are stored by column — every value of one attribute name together, in
/// version order, integers as differences from the column's previous integer — so like bytes sit
/// together, and the body is compressed with zstd when that is smaller.
///
/// Sensitive strings (values of sealed attributes, keys that name a remote address) are not interned with
/// the rest: with a cipher they go to a section of their own, compressed and sealed as one message, so they
/// compress as well as the rest (a value sealed on its own is incompressible ciphertext).
///
/// ```
/// u8 format (2) · u8 flags (bit 0: body deflated, bit 1: sealed section, bit 2: body zstd-compressed)
///    · uvarint count · [uvarint section size · sealed section] · [uvarint raw body size] · body · u32 crc32
/// section (before sealing): uvarint raw size · zstd of (uvarint n, n × (uvarint length, UTF-8)), or those raw
///       bytes when zstd is not smaller (format 1: always deflated)
/// body: strings (uvarint n, n × (uvarint length, UTF-8)) · uvarint |meta| · meta · uvarint |shapes| · shapes
///       · uvarint |shape ids| · shape ids · columns
/// meta, per version: uvarint kind · uvarint key (index × 2, + 1 when in the section) · varint validFrom −
///       previous validFrom · uvarint end (0: open, else 1 + validTo − validFrom)
/// shapes: uvarint n · n × (uvarint set count · set names · uvarint removed count · removed names)
/// shape ids, per version: uvarint shape
/// columns, per attribute name in order of first appearance in the shapes: the values of the versions
///       whose shape sets it — their u8 tags (0 string, 1 int, 2 double, 3 false, 4 true, 5 null, 6 sealed),
///       then their payloads (string: uvarint string index; int: varint difference from the column's
///       previous int; double: u64 bit pattern; sealed: uvarint section index of the value's text form,
///       `s`, `i`, `d`, `b` or `n` then the value)
/// ```
/// Format 1 (still read: older stores and agents) had per-version name lists and interleaved values,
/// deflated. The checksum covers everything before it; decoding checks it, every count and every index.
public enum VersionCodec {
    static let format: UInt8 = 2

    /// zstd's level for blocks: packing is off the hot path (every minute, and each hour's merge). On the
    /// churn hour of BENCHMARKS.md ("State history") level 15 makes the merged blocks 14 % smaller than
    /// level 9 at twice its cost (13 µs a version to merge, 6.6 at level 9); level 19 saves 1.5 % more for
    /// 2.5 times the cost.
    static let zstdLevel: Int32 = 15
    /// zstd's match window for blocks, 2^18 bytes: at level 15 its memory grows with the window, to 66 MB
    /// for a 3 MB block unbounded; 4.6 MB at most with this one. A real store's hourly merge came out 0.9 %
    /// larger than unbounded, 46 % larger at 2^17 (BENCHMARKS.md, "zstd's window").
    static let zstdWindowLog: Int32 = 18
    /// Below this many bytes (a live tick's versions on the wire, a quiet minute's pack) level 3: level 15's
    /// setup doubled the live lane's encoding (`bench sync`: 153 → 329 µs a tick) for a few bytes.
    static let smallBody = 8 << 10

    static func level(for size: Int) -> Int32 { size < smallBody ? 3 : zstdLevel }

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
        var shapeIDs = ByteWriter(capacity: sorted.count)
        // A shape is keyed by its names' string indexes: set, −1, removed (hashing small ints, not strings).
        var shapes: [[Int]] = []
        var shapeIndex: [[Int]: Int] = [:]
        /// Per attribute name, in order of first appearance in a shape: the values set, with whether sealed.
        var columnOf: [Int: Int] = [:] // string index → column
        var columns: [[(AttributeValue, sealed: Bool)]] = []
        var lastFrom: Int64 = 0
        var key: [Int] = []
        for v in sorted {
            meta.uvarint(intern(v.kind.rawValue))
            if let sealer, sealer.isSealed(v.kind, key: v.key) { meta.uvarint(internSecret(v.key) << 1 | 1) } else { meta.uvarint(intern(v.key) << 1) }
            meta.varint(v.validFrom &- lastFrom)
            lastFrom = v.validFrom
            meta.uvarint(v.validTo.map { UInt64(bitPattern: 1 &+ ($0 &- v.validFrom)) } ?? 0)
            let ref = EntityRef(kind: v.kind, key: v.key)
            let base = previous[ref].flatMap { $0.validTo == v.validFrom ? $0.attributes : nil }
            let set = v.attributes.filter { base?[$0.key] != $0.value }.sorted { $0.key < $1.key }
            key.removeAll(keepingCapacity: true)
            for (name, _) in set { key.append(Int(intern(name))) }
            key.append(-1)
            if let base { for name in base.keys.filter({ v.attributes[$0] == nil }).sorted() { key.append(Int(intern(name))) } }
            let id: Int
            if let known = shapeIndex[key] { id = known } else {
                id = shapes.count
                shapeIndex[key] = id
                shapes.append(key)
                for name in key.prefix(while: { $0 >= 0 }) where columnOf[name] == nil {
                    columnOf[name] = columns.count
                    columns.append([])
                }
            }
            shapeIDs.uvarint(UInt64(id))
            for (i, (name, value)) in set.enumerated() {
                columns[columnOf[key[i]]!].append((value, sealed: sealer != nil && value != .null && sealer!.isSealed(v.kind, attribute: name)))
            }
            previous[ref] = v
        }
        var shapeBytes = ByteWriter(capacity: shapes.count * 16)
        shapeBytes.uvarint(UInt64(shapes.count))
        for shape in shapes {
            let split = shape.firstIndex(of: -1)!
            shapeBytes.uvarint(UInt64(split))
            for name in shape[..<split] { shapeBytes.uvarint(UInt64(name)) }
            shapeBytes.uvarint(UInt64(shape.count - split - 1))
            for name in shape[(split + 1)...] { shapeBytes.uvarint(UInt64(name)) }
        }
        var values = ByteWriter(capacity: sorted.count * 16)
        for column in columns {
            for (value, sealed) in column {
                if sealed { values.u8(6); continue }
                switch value {
                case .string: values.u8(0)
                case .int: values.u8(1)
                case .double: values.u8(2)
                case .bool(let b): values.u8(b ? 4 : 3)
                case .null: values.u8(5)
                }
            }
            var lastInt: Int64 = 0
            for (value, sealed) in column {
                if sealed { values.uvarint(internSecret(secretText(value))); continue }
                switch value {
                case .string(let s): values.uvarint(intern(s))
                case .int(let i): values.varint(i &- lastInt); lastInt = i
                case .double(let d): values.u64(d.bitPattern)
                case .bool, .null: break
                }
            }
        }
        var body = ByteWriter(capacity: meta.bytes.count + shapeBytes.bytes.count + shapeIDs.bytes.count + values.bytes.count + strings.count * 12)
        body.stringTable(strings)
        body.uvarint(UInt64(meta.bytes.count))
        body.append(meta.bytes)
        body.uvarint(UInt64(shapeBytes.bytes.count))
        body.append(shapeBytes.bytes)
        body.uvarint(UInt64(shapeIDs.bytes.count))
        body.append(shapeIDs.bytes)
        body.append(values.bytes)

        var section: [UInt8]?
        if !secrets.isEmpty {
            var clear = ByteWriter(capacity: secrets.count * 24)
            clear.stringTable(secrets)
            var packed = ByteWriter(capacity: clear.bytes.count / 2 + 8)
            packed.uvarint(UInt64(clear.bytes.count))
            packed.append(Zstd.compress(clear.bytes, level: level(for: clear.bytes.count), windowLog: zstdWindowLog) ?? clear.bytes)
            guard let sealed = sealer?.sealSection(packed.bytes) else { return nil }
            section = sealed
        }
        var out = ByteWriter(capacity: body.bytes.count / 3 + (section?.count ?? 0) + 16)
        out.u8(format)
        let sectionFlag: UInt8 = section == nil ? 0 : 2
        let compressed = body.bytes.count > 64 ? Zstd.compress(body.bytes, level: level(for: body.bytes.count), windowLog: zstdWindowLog).flatMap { $0.count + 4 < body.bytes.count ? $0 : nil } : nil
        out.u8((compressed == nil ? 0 : 4) | sectionFlag)
        out.uvarint(UInt64(sorted.count))
        if let section {
            out.uvarint(UInt64(section.count))
            out.append(section)
        }
        if let compressed {
            out.uvarint(UInt64(body.bytes.count))
            out.append(compressed)
        } else {
            out.append(body.bytes)
        }
        out.u32(Zlib.crc32(out.bytes))
        return out.bytes
    }

    /// The sealed section of a block, if it has one (to see whether it is under the current key).
    public static func sealedSection(of blob: [UInt8]) throws -> [UInt8]? {
        try blob.withUnsafeBytes { all in
            var r = ByteReader(all)
            guard (1...format).contains(try r.u8()) else { throw ChunkError.corrupt("unknown version block format") }
            guard try r.u8() & 2 != 0 else { return nil }
            _ = try r.uvarint()
            return Array(try r.take(try r.count(limit: r.remaining)))
        }
    }

    /// Which versions of a block a reader wants, by `validFrom` and `validTo`.
    public typealias Keep = (_ from: Int64, _ to: Int64?) -> Bool

    /// Decodes a block; throws ``ChunkError`` on anything damaged (checksum, counts, indexes, truncation).
    /// Sealed strings are opened with `sealer`; without it (or its key) values read as masked (`***`) and
    /// keys as `***#N`, unique within the block. With `keep` (and `kinds`), only the versions it accepts (of
    /// those kinds) are returned, and (format 2) only they and the versions their deltas stand on have their
    /// attributes built — a query at one time, or of one kind, reads a block of an hour at a fraction of the
    /// cost; the whole block is still checked.
    public static func decode(_ blob: [UInt8], sealer: (any AttributeCipher)? = nil, kinds: Set<EntityKind>? = nil,
                              keep: Keep? = nil) throws -> [EntityVersion] {
        try blob.withUnsafeBytes { all in
            let payload = try ChunkCodec.checked(all, minimum: 7, "version block checksum mismatch")
            var head = ByteReader(payload)
            let version = try head.u8()
            guard (1...format).contains(version) else { throw ChunkError.corrupt("unknown version block format \(version)") }
            let flags = try head.u8()
            // Each version costs at least 4 bytes of meta; a count beyond that is damage, not a reason to allocate.
            let count = try head.count(limit: 1 << 26)
            var secrets: Secrets = .none
            if flags & 2 != 0 {
                let sealed = Array(try head.take(try head.count(limit: head.remaining)))
                if let packed = sealer?.openSection(sealed) { secrets = .clear(try openedSection(packed, format: version)) } else { secrets = .masked }
            }
            let rest = UnsafeRawBufferPointer(rebasing: payload[head.pos...])
            func body(_ raw: UnsafeRawBufferPointer) throws -> [EntityVersion] {
                if version == 1 {
                    let all = try decodeRows(ByteReader(raw), count: count, secrets: secrets)
                    guard keep != nil || kinds != nil else { return all }
                    return all.filter { (keep?($0.validFrom, $0.validTo) ?? true) && (kinds?.contains($0.kind) ?? true) }
                }
                return try decodeColumns(ByteReader(raw), count: count, secrets: secrets, kinds: kinds, keep: keep)
            }
            switch flags & 5 {
            case 0: return try body(rest)
            case 1, 4:
                var r = ByteReader(rest)
                let rawSize = try r.count(limit: 1 << 30)
                let tail = UnsafeRawBufferPointer(rebasing: rest[r.pos...])
                let raw = flags & 1 != 0 ? try Zlib.inflate(tail, rawCount: rawSize) : try Zstd.decompress(tail, rawCount: rawSize)
                return try raw.withUnsafeBytes { try body($0) }
            default: throw ChunkError.corrupt("version block flags \(flags)")
            }
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

    static func openedSection(_ packed: [UInt8], format: UInt8) throws -> [String] {
        try packed.withUnsafeBytes { raw in
            var r = ByteReader(raw)
            let size = try r.count(limit: 1 << 30)
            let rest = try r.take(r.remaining)
            let clear = format == 1 ? try Zlib.inflate(rest, rawCount: size) : rest.count == size ? Array(rest) : try Zstd.decompress(rest, rawCount: size)
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

    /// A block's string tables and how its fields resolve against them.
    struct Tables {
        let strings: [String]
        let secrets: Secrets

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

        func key(_ field: UInt64) throws -> String {
            field & 1 == 0 ? try string(field >> 1) : try secret(field >> 1) ?? "\(Redactor.mask)#\(field >> 1)"
        }

        func kind(_ i: UInt64) throws -> EntityKind {
            guard let kind = EntityKind(rawValue: try string(i)) else { throw ChunkError.corrupt("unknown entity kind") }
            return kind
        }

        /// The payload of a value of `tag`; an int is `previous` plus the stored difference when `delta`.
        func value(tag: UInt8, _ r: inout ByteReader, previousInt: inout Int64, delta: Bool) throws -> AttributeValue {
            switch tag {
            case 0: return .string(try string(try r.uvarint()))
            case 1:
                let i = delta ? previousInt &+ (try r.varint()) : try r.varint()
                previousInt = i
                return .int(i)
            case 2: return .double(Double(bitPattern: try r.u64()))
            case 3: return .bool(false)
            case 4: return .bool(true)
            case 5: return .null
            case 6: return try secret(try r.uvarint()).map(value(secretText:)) ?? .string(Redactor.mask)
            default: throw ChunkError.corrupt("unknown value tag \(tag)")
            }
        }
    }

    /// One version's entry of the meta stream.
    struct Meta {
        var kind: UInt64, keyField: UInt64, from: Int64, to: Int64?

        static func read(_ r: inout ByteReader, after from: Int64) throws -> Meta {
            let kind = try r.uvarint(), key = try r.uvarint()
            let start = from &+ (try r.varint())
            let end = try r.uvarint()
            return Meta(kind: kind, keyField: key, from: start, to: end == 0 ? nil : start &+ Int64(bitPattern: end &- 1))
        }
    }

    /// The string table and the meta stream, common to both formats, and the reader after them.
    private static func head(_ reader: ByteReader, count: Int, secrets: Secrets) throws -> (Tables, ByteReader, ByteReader) {
        let (strings, rest) = try strings(reader)
        var r = rest
        let metaLen = try r.count(limit: r.remaining)
        guard count <= metaLen / 4 + 1 else { throw ChunkError.corrupt("version count \(count) exceeds what the block holds") }
        let meta = ByteReader(try r.take(metaLen))
        return (Tables(strings: strings, secrets: secrets), meta, r)
    }

    private struct EntityRef: Hashable { var kind: UInt64; var key: UInt64 }

    /// Format 2: shapes and columns.
    private static func decodeColumns(_ reader: ByteReader, count: Int, secrets: Secrets, kinds: Set<EntityKind>?, keep: Keep?) throws -> [EntityVersion] {
        let (t, meta0, r0) = try head(reader, count: count, secrets: secrets)
        var meta = meta0, r = r0
        var shapeReader = ByteReader(try r.take(try r.count(limit: r.remaining)))
        let shapeCount = try shapeReader.count(limit: shapeReader.remaining)
        var shapes: [(set: [Int], removed: [String])] = []
        var columnNames: [String] = []
        var column: [String: Int] = [:]
        for _ in 0..<shapeCount {
            var set: [Int] = []
            for _ in 0..<(try shapeReader.count(limit: shapeReader.remaining)) {
                let name = try t.string(try shapeReader.uvarint())
                if column[name] == nil {
                    column[name] = columnNames.count
                    columnNames.append(name)
                }
                set.append(column[name]!)
            }
            var removed: [String] = []
            for _ in 0..<(try shapeReader.count(limit: shapeReader.remaining)) { removed.append(try t.string(try shapeReader.uvarint())) }
            shapes.append((set, removed))
        }
        guard shapeReader.remaining == 0 else { throw ChunkError.corrupt("version block shapes have trailing bytes") }
        var ids = ByteReader(try r.take(try r.count(limit: r.remaining)))
        guard !shapes.isEmpty || count == 0 else { throw ChunkError.corrupt("versions without shapes") }
        var shapeOf: [Int] = []
        shapeOf.reserveCapacity(count)
        var lengths = [Int](repeating: 0, count: columnNames.count)
        for _ in 0..<count {
            let id = try ids.count(limit: shapes.count - 1)
            shapeOf.append(id)
            for c in shapes[id].set { lengths[c] += 1 }
        }
        guard ids.remaining == 0 else { throw ChunkError.corrupt("version block shape ids have trailing bytes") }
        var values: [[AttributeValue]] = []
        values.reserveCapacity(columnNames.count)
        for n in lengths {
            let tags = try r.take(n) // a tag byte a value: a longer column is damage, refused before allocating
            var previousInt: Int64 = 0
            var list: [AttributeValue] = []
            list.reserveCapacity(n)
            for tag in tags { list.append(try t.value(tag: tag, &r, previousInt: &previousInt, delta: true)) }
            values.append(list)
        }
        guard r.remaining == 0 else { throw ChunkError.corrupt("version block has trailing bytes") }
        // The meta stream first: times, and the version each delta stands on (the entity's previous version
        // in the block, ending where it starts).
        var metas: [Meta] = []
        metas.reserveCapacity(count)
        var baseOf = [Int](repeating: -1, count: count)
        var previous: [EntityRef: Int] = [:]
        previous.reserveCapacity(count)
        var from: Int64 = 0
        for k in 0..<count {
            let m = try Meta.read(&meta, after: from)
            from = m.from
            let ref = EntityRef(kind: m.kind, key: m.keyField)
            if let p = previous[ref], metas[p].to == m.from { baseOf[k] = p }
            guard baseOf[k] >= 0 || shapes[shapeOf[k]].removed.isEmpty else { throw ChunkError.corrupt("a full version removes attributes") }
            previous[ref] = k
            metas.append(m)
        }
        guard meta.remaining == 0 else { throw ChunkError.corrupt("version block meta has trailing bytes") }
        // Attributes are built only for the versions kept and the ones their deltas stand on.
        var kept = [Bool](repeating: keep == nil && kinds == nil, count: count), needed = kept
        if keep != nil || kinds != nil {
            // A block holds a handful of kinds: each one's string is looked up once.
            var kindWanted: [UInt64: Bool] = [:]
            func wanted(_ m: Meta) throws -> Bool {
                guard let kinds else { return true }
                if let w = kindWanted[m.kind] { return w }
                let w = kinds.contains(try t.kind(m.kind))
                kindWanted[m.kind] = w
                return w
            }
            for k in 0..<count where try wanted(metas[k]) && keep?(metas[k].from, metas[k].to) ?? true {
                kept[k] = true
                var b = k
                while b >= 0, !needed[b] {
                    needed[b] = true
                    b = baseOf[b]
                }
            }
        }
        var built = [[String: AttributeValue]?](repeating: nil, count: count)
        var next = [Int](repeating: 0, count: columnNames.count)
        var out: [EntityVersion] = []
        for k in 0..<count {
            let shape = shapes[shapeOf[k]]
            guard needed[k] else {
                for c in shape.set { next[c] += 1 }
                continue
            }
            var attrs = baseOf[k] >= 0 ? built[baseOf[k]]! : [:]
            attrs.reserveCapacity(shape.set.count)
            for c in shape.set {
                attrs[columnNames[c]] = values[c][next[c]]
                next[c] += 1
            }
            for name in shape.removed { attrs[name] = nil }
            built[k] = attrs
            if kept[k] {
                let m = metas[k]
                out.append(EntityVersion(kind: try t.kind(m.kind), key: try t.key(m.keyField), attributes: attrs, validFrom: m.from, validTo: m.to))
            }
        }
        return out
    }

    /// Format 1: per-version name lists, values interleaved.
    private static func decodeRows(_ reader: ByteReader, count: Int, secrets: Secrets) throws -> [EntityVersion] {
        let (t, meta0, r0) = try head(reader, count: count, secrets: secrets)
        var meta = meta0, r = r0
        let namesLen = try r.count(limit: r.remaining)
        var names = ByteReader(try r.take(namesLen))
        var values = ByteReader(try r.take(r.remaining))
        var previous: [EntityRef: Int] = [:]
        var out: [EntityVersion] = []
        out.reserveCapacity(count)
        var from: Int64 = 0
        var unused: Int64 = 0
        for _ in 0..<count {
            let m = try Meta.read(&meta, after: from)
            from = m.from
            let ref = EntityRef(kind: m.kind, key: m.keyField)
            let base = previous[ref].flatMap { out[$0].validTo == m.from ? out[$0].attributes : nil }
            var attrs = base ?? [:]
            let setCount = try names.count(limit: names.remaining)
            attrs.reserveCapacity(setCount)
            for _ in 0..<setCount {
                let name = try t.string(try names.uvarint())
                attrs[name] = try t.value(tag: try values.u8(), &values, previousInt: &unused, delta: false)
            }
            if base != nil {
                for _ in 0..<(try names.count(limit: names.remaining)) { attrs[try t.string(try names.uvarint())] = nil }
            }
            previous[ref] = out.count
            out.append(EntityVersion(kind: try t.kind(m.kind), key: try t.key(m.keyField), attributes: attrs, validFrom: m.from, validTo: m.to))
        }
        guard meta.remaining == 0, names.remaining == 0, values.remaining == 0 else { throw ChunkError.corrupt("version block has trailing bytes") }
        return out
    }
}

extension ByteWriter {
    /// A string table: uvarint n, n × (uvarint length, UTF-8).
    mutating func stringTable(_ strings: [String]) {
        uvarint(UInt64(strings.count))
        for s in strings {
            let utf8 = Array(s.utf8)
            uvarint(UInt64(utf8.count))
            append(utf8)
        }
    }
}
