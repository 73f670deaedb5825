import Foundation
import Testing
import TwinCore
@testable import TwinStorage
import TwinSecurity
import GRDB

/// The compact encoding of entity versions (packed blocks, the wire): exact round trips, deltas between
/// an entity's versions, and damage refused with an error.
@Suite struct VersionCodecTests {
    /// Random histories: entities that appear, change attribute by attribute (added, changed, removed)
    /// and disappear, with every value type; the decoded block equals the input, sorted by start, and a
    /// decode keeping only some versions equals the input filtered.
    @Test func roundTripsRandomHistories() throws {
        var rng = SeededGenerator(seed: 7)
        for round in 0..<40 {
            var versions: [EntityVersion] = []
            for e in 0..<Int.random(in: 1...60, using: &rng) {
                let kind: EntityKind = [.processes, .connections, .packages, .services][e % 4]
                var t = Int64.random(in: -5_000_000...1_800_000_000_000, using: &rng)
                var attrs: [String: AttributeValue] = ["name": .string("e\(e) ünïcode ✓"), "pid": .int(Int64(e))]
                for _ in 0..<Int.random(in: 1...5, using: &rng) {
                    let life = Int64.random(in: 1...86_400_000, using: &rng)
                    let open = Bool.random(using: &rng) && round % 2 == 0
                    versions.append(EntityVersion(kind: kind, key: "\(e)@\(round)", attributes: attrs, validFrom: t, validTo: open ? nil : t + life))
                    if open { break }
                    t += life
                    switch Int.random(in: 0..<6, using: &rng) {
                    case 0: attrs["state"] = .string(["alive", "zombie"].randomElement(using: &rng)!)
                    case 1: attrs["rss"] = .double(Double.random(in: -1e9...1e9, using: &rng))
                    case 2: attrs["flag"] = .bool(Bool.random(using: &rng))
                    case 3: attrs["gone"] = .null
                    case 4: attrs["pid"] = nil
                    default: attrs["big"] = .int(Int64.random(in: .min ... .max, using: &rng))
                    }
                }
            }
            let block = VersionCodec.encode(versions)
            let back = try VersionCodec.decode(block)
            let sorted = versions.sorted { ($0.validFrom, $0.kind.rawValue, $0.key) < ($1.validFrom, $1.kind.rawValue, $1.key) }
            #expect(back == sorted)
            // A reader wanting some versions (alive at a time, most of them deltas) gets exactly those.
            for probe in stride(from: 0, to: sorted.count, by: max(1, sorted.count / 5)).map({ sorted[$0].validFrom + 1 }) {
                let alive: VersionCodec.Keep = { from, to in from <= probe && (to ?? .max) > probe }
                #expect(try VersionCodec.decode(block, keep: alive) == sorted.filter { alive($0.validFrom, $0.validTo) })
            }
            // And a reader of some kinds, with or without a time, gets only theirs.
            let kinds: Set<EntityKind> = round % 3 == 0 ? [.processes] : [.connections, .services]
            #expect(try VersionCodec.decode(block, kinds: kinds) == sorted.filter { kinds.contains($0.kind) })
            let early: VersionCodec.Keep = { from, _ in from < 900_000_000_000 }
            #expect(try VersionCodec.decode(block, kinds: kinds, keep: early) == sorted.filter { kinds.contains($0.kind) && early($0.validFrom, $0.validTo) })
        }
        #expect(try VersionCodec.decode(VersionCodec.encode([])).isEmpty)
    }

    /// Blocks are compressed with a bounded match window (the compressor's memory grows with it): a
    /// repeat further back than 256 KiB is not found with the blocks' window, and is with a wider one;
    /// both decompress exactly.
    @Test func zstdMatchesOnlyWithinItsWindow() throws {
        var rng = SeededGenerator(seed: 3)
        let block = (0..<300_000).map { _ in UInt8.random(in: 97...122, using: &rng) }
        let input = Array([[UInt8]](repeating: block, count: 4).joined())
        let bounded = try #require(Zstd.compress(input, level: VersionCodec.zstdLevel, windowLog: VersionCodec.zstdWindowLog))
        let wide = try #require(Zstd.compress(input, level: VersionCodec.zstdLevel, windowLog: 21))
        #expect(bounded.count > 3 * wide.count)
        for packed in [bounded, wide] {
            #expect(try packed.withUnsafeBytes { try Zstd.decompress($0, rawCount: input.count) } == input)
        }
    }

    /// A change of one attribute costs a few bytes, not the whole attribute set again.
    @Test func changesAreStoredAsDeltas() throws {
        let long = String(repeating: "/usr/lib/jvm/bin/java -Xmx4g ", count: 20)
        var versions: [EntityVersion] = []
        for i in 0..<200 {
            versions.append(EntityVersion(kind: .processes, key: "42@7", attributes: ["cmdline": .string(long), "state": .string(i % 2 == 0 ? "alive" : "stopped"), "n": .int(Int64(i))],
                                          validFrom: Int64(i) * 1000, validTo: Int64(i + 1) * 1000))
        }
        let block = VersionCodec.encode(versions)
        #expect(try VersionCodec.decode(block) == versions)
        #expect(block.count < 200 * 6, "\(block.count) bytes for 200 versions")
    }

    /// Blocks written by hand from docs/format/versions.md (the fuzz corpus's seeds, made by a Python
    /// script): format 1 (older stores and agents) and format 2 decode as the document says: a full
    /// version, then a delta against it.
    @Test(arguments: ["seed-block", "seed-block-2"])
    func readsABlockWrittenFromTheFormatDocument(seedName: String) throws {
        let seed = try [UInt8](Data(contentsOf: URL(fileURLWithPath: FuzzCorpusTests.corpusRoot + "/versions/" + seedName)))
        let v = try VersionCodec.decode(seed)
        #expect(v == [
            EntityVersion(kind: .processes, key: "12@34", attributes: ["name": "sleep", "pid": .int(12)], validFrom: 1000, validTo: 1500),
            EntityVersion(kind: .processes, key: "12@34", attributes: ["name": "sleep", "pid": .int(12), "state": "alive"], validFrom: 1500, validTo: nil),
        ])
    }

    /// Every truncation and every single-bit flip is refused with an error (the checksum or a bounds
    /// check), never a crash or a wrong answer.
    @Test func damageIsAnError() throws {
        let versions = (0..<30).map { i in
            EntityVersion(kind: .connections, key: "tcp/10.0.0.\(i):22/10.0.0.9:\(40000 + i)", attributes: ["state": .string("ESTABLISHED"), "pid": .int(Int64(i))],
                          validFrom: Int64(i) * 500, validTo: Int64(i) * 500 + 9000)
        }
        let block = VersionCodec.encode(versions)
        for n in 0..<block.count { #expect(throws: (any Error).self) { try VersionCodec.decode(Array(block.prefix(n))) } }
        for i in 0..<block.count {
            for bit in 0..<8 {
                var bad = block
                bad[i] ^= UInt8(1 << bit)
                #expect(throws: (any Error).self) { try VersionCodec.decode(bad) }
            }
        }
    }
}

/// Packed blocks seal their sensitive strings together: the block holds no clear secret, the owner reads
/// them back exactly, a reader without the key reads them masked, and key rotation re-seals the block.
@Suite struct SealedBlockTests {
    /// A store with a key ring and the default policy, holding 20 one-second processes whose command
    /// lines carry a password (`hunter1` … `hunter20`), the writer finished.
    static func sealedStore(_ dir: String) throws -> (TwinStore, KeyRing, PolicyCipher) {
        let store = try TwinStore.open(dataDir: dir)
        let keys = try KeyRing(dataDir: dir, create: true)
        let cipher = PolicyCipher(policy: DataPolicy(), keys: keys)
        store.use(cipher: cipher)
        let w = TwinWriter(store: store)
        try w.begin(now: 999, interval: 1000)
        for i in 1...20 {
            var o = Observation(timestamp: Int64(i) * 1000)
            o.set(.processes, [Entity(kind: .processes, key: "7@\(i)", attributes: ["command": .string("job --password hunter\(i)"), "user": "bob"])])
            try w.commit(o)
        }
        try w.finish(now: 30_000)
        return (store, keys, cipher)
    }

    @Test func sensitiveStringsAreSealedTogether() throws {
        let dir = try temporaryDirectory("hosttwin-sealed-block")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keys = try KeyRing(dataDir: dir, create: true)
        let cipher = PolicyCipher(policy: DataPolicy(), keys: keys)
        let versions = (0..<50).map { i in
            EntityVersion(kind: .processes, key: "\(100 + i)@\(i)",
                          attributes: ["command": .string("curl --secret-token s3cr3t-\(i % 5) https://example.test/\(i)"), "user": "alice", "pid": .int(Int64(100 + i))],
                          validFrom: Int64(i) * 1000, validTo: Int64(i) * 1000 + 500)
        } + [EntityVersion(kind: .connections, key: "tcp/10.0.0.1:22/192.0.2.7:50000", attributes: ["remote_address": "192.0.2.7", "state": "ESTABLISHED"],
                           validFrom: 0, validTo: 9000)]
        let block = try #require(VersionCodec.encode(versions, sealer: cipher))
        let text = String(decoding: block, as: UTF8.self)
        for secret in ["s3cr3t", "alice", "192.0.2.7", "example.test"] { #expect(!text.contains(secret), "\(secret) in clear") }
        let sorted = versions.sorted { ($0.validFrom, $0.kind.rawValue, $0.key) < ($1.validFrom, $1.kind.rawValue, $1.key) }
        #expect(try VersionCodec.decode(block, sealer: cipher) == sorted)

        // Without the key: everything else exact, secrets masked, keys still unique.
        let stranger = PolicyCipher(policy: DataPolicy(), keys: try KeyRing(dataDir: dir + "/elsewhere", create: false))
        for masked in [try VersionCodec.decode(block), try VersionCodec.decode(block, sealer: stranger)] {
            #expect(masked.map(\.validFrom) == sorted.map(\.validFrom))
            #expect(masked.allSatisfy { $0.kind != .processes || ($0.attributes["command"] == .string(Redactor.mask) && $0.attributes["pid"] != nil) })
            #expect(Set(masked.map(\.key)).count == masked.count)
        }

        // Rotation: the section is stale, then re-sealed under the new key by the store's rewrite.
        let section = try #require(try VersionCodec.sealedSection(of: block))
        #expect(!cipher.isStale(section: section))
        _ = try keys.rotate()
        #expect(cipher.isStale(section: section))
        // A damaged section is an error, not a silent mask.
        var bad = block
        bad[6] ^= 0x40
        #expect(throws: (any Error).self) { try VersionCodec.decode(bad, sealer: cipher) }
    }

    /// In a store: packing with the cipher stores sealed sections, reads are exact, and `key rotate
    /// --retire`'s rewrite leaves no block under the old key.
    @Test func storePacksWithItsCipherAndRotationReseals() throws {
        let dir = try temporaryDirectory("hosttwin-sealed-store")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (store, keys, cipher) = try Self.sealedStore(dir)
        #expect(try store.packVersions(before: 25_000) == 19)
        let blob = try #require(try store.pool.read { db in try Data.fetchOne(db, sql: "SELECT data FROM version_blocks") })
        #expect(!String(decoding: blob, as: UTF8.self).contains("hunter"))
        #expect(try store.state(at: 5500).first?.attributes["command"] == .string("job --password hunter5"))
        let old = try #require(try VersionCodec.sealedSection(of: [UInt8](blob)))
        _ = try keys.rotate()
        let (rows, deleted) = try cipher.retireOldKeys(store: store, settle: .zero)
        #expect(rows >= 19 && deleted.count == 1)
        let resealed = try #require(try store.pool.read { db in try Data.fetchOne(db, sql: "SELECT data FROM version_blocks") })
        let section = try #require(try VersionCodec.sealedSection(of: [UInt8](resealed)))
        #expect(section != old && !cipher.isStale(section: section))
        #expect(try store.state(at: 5500).first?.attributes["command"] == .string("job --password hunter5"))
        #expect(try store.state(at: 20_500).first?.attributes["user"] == .string("bob"))
    }

    /// Compaction merges an hour's sealed blocks into one, still sealed and read back exactly; blocks a
    /// process cannot open (its key ring lacks the key) are left as they are.
    @Test func mergedBlocksStaySealed() throws {
        let dir = try temporaryDirectory("hosttwin-sealed-merge")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (store, _, cipher) = try Self.sealedStore(dir)
        try store.packVersions(before: 10_000)
        try store.packVersions(before: 25_000)
        let before = try store.state(at: 5500)
        #expect(try store.counts()["version_blocks"] == 2)

        // Without the key: nothing merged, nothing lost.
        store.use(cipher: PolicyCipher(policy: DataPolicy(), keys: try KeyRing(dataDir: dir + "/elsewhere", create: false)))
        #expect(try store.compactVersionBlocks(before: 3_600_000) == 0)
        #expect(try store.counts()["version_blocks"] == 2)

        store.use(cipher: cipher)
        #expect(try store.compactVersionBlocks(before: 3_600_000) == 1)
        let blobs = try store.pool.read { db in try Data.fetchAll(db, sql: "SELECT data FROM version_blocks") }
        #expect(blobs.count == 1)
        #expect(!String(decoding: blobs[0], as: UTF8.self).contains("hunter"))
        #expect(try VersionCodec.sealedSection(of: [UInt8](blobs[0])) != nil)
        #expect(try store.state(at: 5500) == before)
        #expect(try store.state(at: 5500).first?.attributes["command"] == .string("job --password hunter5"))
        #expect(try store.state(at: 19_500).first?.attributes["user"] == .string("bob"))
    }
}
