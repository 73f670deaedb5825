import TwinCore

/// Counts and a digest of one host's twin over a window of time, computed the same way from the host's
/// own store (an agent's) and from any hub holding it — so every tier can be checked to hold exactly the
/// agent's samples and versions (`hosttwin digest`; the fleet harness compares them), and agent and hub
/// can compare ranges of ticks (reconciliation, docs/format/sync.md).
///
/// The digest is FNV-1a (64 bits) over the series in key order (metric, labels without `host`, type,
/// then each sample's time and value bits) and over the versions in (kind, key, start) order (kind, key
/// without the host prefix, start, end if not after `until`, attributes without `host` in name order):
/// `versionDigest` hashes the versions alone, `digest` the samples and then `versionDigest`. A window that starts after the beginning also hashes the
/// ends within it of versions that started before it. It detects a sample or version missing, doubled or
/// changed; it is not a cryptographic hash.
public struct TwinDigest: Sendable, Codable, Equatable {
    public var series: Int
    public var samples: Int
    public var versions: Int
    public var digest: String
    /// The versions' part alone (starts and ends in the window).
    public var versionDigest: String?

    enum CodingKeys: String, CodingKey {
        case series, samples, versions, digest
        case versionDigest = "version_digest"
    }

    /// `host`'s twin in `store` up to `until` (inclusive): at a hub, its series labelled host=`host` and its
    /// entities keyed `host/…`; nil: a host's own store (series without a `host` label).
    public static func compute(store: TwinStore, host: String?, until: Int64, dump: ((String) -> Void)? = nil) throws -> TwinDigest {
        try Reader(store: store, host: host).digest(from: .min / 2, until: until, dump: dump)
    }

    /// One host's series and versions in a store, read once for digests of several windows.
    public struct Reader {
        let store: TwinStore
        let host: String?
        let catalog: [(text: String, info: SeriesInfo)]

        public init(store: TwinStore, host: String?) throws {
            self.store = store
            self.host = host
            var catalog: [(text: String, info: SeriesInfo)] = []
            for s in try store.seriesCatalog() where s.key.labels["host"] == host {
                let key = SeriesKey(s.key.metric, Labels(s.key.labels.pairs.filter { $0.name != "host" }))
                catalog.append((key.description + "/" + s.type.rawValue, s))
            }
            catalog.sort { $0.text < $1.text }
            self.catalog = catalog
        }

        /// The digest of `[from, until]`. With `times`, only samples at those times count (an agent's
        /// ticks: samples between ticks, from an import, are never sent).
        public func digest(from: Int64, until: Int64, times: Set<Int64>? = nil, dump: ((String) -> Void)? = nil) throws -> TwinDigest {
            var hash = FNV()
            let samples = try store.samples(ids: catalog.map(\.info.id), from: from, to: until)
            var sampleCount = 0, seriesCount = 0
            for (text, info) in catalog {
                guard var points = samples[info.id], !points.isEmpty else { continue }
                if let times { points = points.filter { times.contains($0.0) }; if points.isEmpty { continue } }
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
            func owned(_ v: EntityVersion) -> Bool { v.attributes["host"]?.description == host && v.key.hasPrefix(prefix) }
            var versions: [(kind: String, key: String, from: Int64, to: Int64?, attributes: [(String, String)])] = []
            for v in try store.versionsStarting(from: from, to: until) where owned(v) {
                let attributes = v.attributes.filter { $0.key != "host" }.map { ($0.key, $0.value.description) }.sorted { $0.0 < $1.0 }
                versions.append((v.kind.rawValue, String(v.key.dropFirst(prefix.count)), v.validFrom, v.validTo.flatMap { $0 <= until ? $0 : nil }, attributes))
            }
            versions.sort { ($0.kind, $0.key, $0.from) < ($1.kind, $1.key, $1.from) }
            // Ends within the window of versions that started before it.
            var ends: [(kind: String, key: String, from: Int64, to: Int64)] = []
            if from > .min / 2 {
                for v in try store.versionsEnding(from: from, to: until) where v.validFrom < from && owned(v) {
                    ends.append((v.kind.rawValue, String(v.key.dropFirst(prefix.count)), v.validFrom, v.validTo!))
                }
                ends.sort { ($0.kind, $0.key, $0.from) < ($1.kind, $1.key, $1.from) }
            }
            var versionHash = FNV()
            for v in versions {
                versionHash.add(v.kind)
                versionHash.add(v.key)
                versionHash.add(UInt64(bitPattern: v.from))
                versionHash.add(UInt64(bitPattern: v.to ?? -1))
                for (name, value) in v.attributes { versionHash.add(name); versionHash.add(value) }
                dump?("\(v.kind) \(v.key) \(v.from) \(v.to.map(String.init) ?? "-") \(v.attributes.map { "\($0.0)=\($0.1)" }.joined(separator: " "))")
            }
            for e in ends {
                versionHash.add("end " + e.kind)
                versionHash.add(e.key)
                versionHash.add(UInt64(bitPattern: e.from))
                versionHash.add(UInt64(bitPattern: e.to))
                dump?("end \(e.kind) \(e.key) \(e.from) \(e.to)")
            }
            hash.add(versionHash.value)
            return TwinDigest(series: seriesCount, samples: sampleCount, versions: versions.count + ends.count,
                              digest: String(hash.value, radix: 16), versionDigest: String(versionHash.value, radix: 16))
        }

        /// The entity state at `at` (versions valid then): their count and a digest.
        public func state(at: Int64) throws -> TwinDigest {
            let prefix = host.map { $0 + "/" } ?? ""
            var hash = FNV()
            var rows: [(String, String, Int64, [(String, String)])] = []
            for v in try store.state(at: at) where v.attributes["host"]?.description == host && v.key.hasPrefix(prefix) {
                rows.append((v.kind.rawValue, String(v.key.dropFirst(prefix.count)), v.validFrom,
                             v.attributes.filter { $0.key != "host" }.map { ($0.key, $0.value.description) }.sorted { $0.0 < $1.0 }))
            }
            rows.sort { ($0.0, $0.1) < ($1.0, $1.1) }
            for (kind, key, from, attributes) in rows {
                hash.add(kind)
                hash.add(key)
                hash.add(UInt64(bitPattern: from))
                for (name, value) in attributes { hash.add(name); hash.add(value) }
            }
            let text = String(hash.value, radix: 16)
            return TwinDigest(series: 0, samples: 0, versions: rows.count, digest: text, versionDigest: text)
        }
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
