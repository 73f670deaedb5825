import TwinCore
import TwinStorage

/// Counts and a digest of one host's twin up to a time, computed the same way from the host's own store
/// (an agent's) and from any hub holding it — so every tier can be checked to hold exactly the agent's
/// samples and versions (`hosttwin digest`; the fleet harness compares them).
///
/// The digest is FNV-1a (64 bits) over the series in key order (metric, labels without `host`, type,
/// then each sample's time and value bits) and over the versions in (kind, key, start) order (kind, key
/// without the host prefix, start, end if not after `until`, attributes without `host` in name order).
/// It detects a sample or version missing, doubled or changed; it is not a cryptographic hash.
public struct TwinDigest: Sendable, Codable, Equatable {
    public var series: Int
    public var samples: Int
    public var versions: Int
    public var digest: String

    /// `host`'s twin in `store` up to `until` (inclusive): at a hub, its series labelled host=`host` and its
    /// entities keyed `host/…`; nil: a host's own store (series without a `host` label).
    public static func compute(store: TwinStore, host: String?, until: Int64, dump: ((String) -> Void)? = nil) throws -> TwinDigest {
        var hash = FNV()
        var catalog: [(text: String, info: SeriesInfo)] = []
        for s in try store.seriesCatalog() where s.key.labels["host"] == host {
            let key = SeriesKey(s.key.metric, Labels(s.key.labels.pairs.filter { $0.name != "host" }))
            catalog.append((key.description + "/" + s.type.rawValue, s))
        }
        catalog.sort { $0.text < $1.text }
        let samples = try store.samples(ids: catalog.map(\.info.id), from: .min / 2, to: until)
        var sampleCount = 0, seriesCount = 0
        for (text, info) in catalog {
            guard let points = samples[info.id], !points.isEmpty else { continue }
            seriesCount += 1
            hash.add(text)
            for (t, v) in points {
                hash.add(UInt64(bitPattern: t))
                hash.add(v.bitPattern)
                dump?("\(text) \(t) \(v)")
            }
            sampleCount += points.count
        }
        let prefix = host.map { $0 + "/" } ?? ""
        var versions: [(kind: String, key: String, from: Int64, to: Int64?, attributes: [(String, String)])] = []
        for v in try store.versionsStarting(from: .min / 2, to: until) {
            let owner = v.attributes["host"]?.description
            guard owner == host, v.key.hasPrefix(prefix) else { continue }
            let attributes = v.attributes.filter { $0.key != "host" }.map { ($0.key, $0.value.description) }.sorted { $0.0 < $1.0 }
            versions.append((v.kind.rawValue, String(v.key.dropFirst(prefix.count)), v.validFrom, v.validTo.flatMap { $0 <= until ? $0 : nil }, attributes))
        }
        versions.sort { ($0.kind, $0.key, $0.from) < ($1.kind, $1.key, $1.from) }
        for v in versions {
            hash.add(v.kind)
            hash.add(v.key)
            hash.add(UInt64(bitPattern: v.from))
            hash.add(UInt64(bitPattern: v.to ?? -1))
            for (name, value) in v.attributes { hash.add(name); hash.add(value) }
            dump?("\(v.kind) \(v.key) \(v.from) \(v.to.map(String.init) ?? "-") \(v.attributes.map { "\($0.0)=\($0.1)" }.joined(separator: " "))")
        }
        return TwinDigest(series: seriesCount, samples: sampleCount, versions: versions.count, digest: String(hash.value, radix: 16))
    }

    struct FNV {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        mutating func add(_ byte: UInt8) {
            value ^= UInt64(byte)
            value = value &* 0x100_0000_01b3
        }
        mutating func add(_ x: UInt64) { for i in 0..<8 { add(UInt8(truncatingIfNeeded: x >> (8 * i))) } }
        mutating func add(_ s: String) {
            for b in s.utf8 { add(b) }
            add(UInt8(0xff)) // never inside UTF-8: ends the string
        }
    }
}
