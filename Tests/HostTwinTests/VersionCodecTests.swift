import Foundation
import Testing
import TwinCore
@testable import TwinStorage

/// The compact encoding of entity versions (packed blocks, the wire): exact round trips, deltas between
/// an entity's versions, and damage refused with an error.
@Suite struct VersionCodecTests {
    /// Random histories: entities that appear, change attribute by attribute (added, changed, removed)
    /// and disappear, with every value type; the decoded block equals the input, sorted by start.
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
        }
        #expect(try VersionCodec.decode(VersionCodec.encode([])).isEmpty)
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

    /// A block written by hand from docs/format/versions.md (the fuzz corpus's seed, made by a Python
    /// script) decodes as the document says: a full version, then a delta against it.
    @Test func readsABlockWrittenFromTheFormatDocument() throws {
        let seed = try [UInt8](Data(contentsOf: URL(fileURLWithPath: FuzzCorpusTests.corpusRoot + "/versions/seed-block")))
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
