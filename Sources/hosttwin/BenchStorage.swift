import ArgumentParser
import Foundation
import TwinCore
import TwinSecurity
import TwinStorage

/// `hosttwin bench storage`: bytes per sample of an existing data directory, bulk ingest rate, read times.
struct BenchStorage: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storage",
        abstract: "Storage per sample of a data directory; ingest rate and read times on generated data.",
        discussion: """
        With --data-dir, measures that directory as it is (safe while `run` writes to it): samples stored, bytes per \
        sample of the sample storage (chunk pages, their index pages and the log) and of the whole directory. Then, in a \
        temporary directory: ingest of generated exposition text through the bulk path (the `import` path), and reads \
        of 24 h of one 1 s series and of 30 days of it at a 1 h step.
        """
    )
    @Option(help: ArgumentHelp("Data directory to measure (skipped when absent).", valueName: "DIR")) var dataDir: String?
    @Option(help: ArgumentHelp("Series in the ingest benchmark.", valueName: "N")) var series = 10_000
    @Option(help: ArgumentHelp("Samples per series in the ingest benchmark.", valueName: "N")) var samplesPerSeries = 100
    @Flag(inversion: .prefixedNo, help: "Run the generated-data benchmarks (ingest, reads).") var generated = true
    @OptionGroup var output: OutputOptions

    struct StoreFigures: Encodable {
        var dataDir: String
        var samples: Int64
        var series: Int64
        var hours: Double
        var bytesPerSample: Double
        var dirBytes: Int64
        var dirBytesPerSample: Double
        var sampleStorageBytes: Int64
        var bytes: [String: Int64]
        var state: StateStorageFigures
        enum CodingKeys: String, CodingKey {
            case dataDir = "data_dir", samples, series, hours, bytesPerSample = "bytes_per_sample", dirBytes = "dir_bytes"
            case dirBytesPerSample = "dir_bytes_per_sample", sampleStorageBytes = "sample_storage_bytes", bytes, state
        }
    }
    struct Ingest: Encodable {
        var series: Int
        var samples: Int
        var seconds: Double
        var cpuSeconds: Double
        var samplesPerSecond: Double
        var samplesPerCPUSecond: Double
        enum CodingKeys: String, CodingKey {
            case series, samples, seconds, cpuSeconds = "cpu_seconds", samplesPerSecond = "samples_per_second", samplesPerCPUSecond = "samples_per_cpu_second"
        }
    }
    struct Reads: Encodable {
        var raw24hSamples: Int
        var raw24hMillis: Double
        var rollup30dPoints: Int
        var rollup30dMillis: Double
        var rollup30dTier: String
        enum CodingKeys: String, CodingKey {
            case raw24hSamples = "raw_24h_samples", raw24hMillis = "raw_24h_ms", rollup30dPoints = "rollup_30d_1h_points"
            case rollup30dMillis = "rollup_30d_1h_ms", rollup30dTier = "rollup_30d_1h_tier"
        }
    }
    struct Result: Encodable {
        var store: StoreFigures?
        var ingest: Ingest?
        var reads: Reads?
    }

    func run() throws {
        var result = Result()
        if let dataDir { result.store = try Self.measure(dataDir) }
        if generated {
            result.ingest = try ingest()
            result.reads = try reads()
        }
        if output.json { try printJSON(result); return }
        if let s = result.store {
            print("data directory \(s.dataDir): \(s.samples) samples of \(s.series) series over \(String(format: "%.2f", s.hours)) h")
            print(String(format: "  sample storage: %.3f bytes/sample (%@ of chunk pages, chunk index pages and log)", s.bytesPerSample, humanBytes(Double(s.sampleStorageBytes))))
            print(String(format: "  whole directory: %.3f bytes/sample (%@)", s.dirBytesPerSample, humanBytes(Double(s.dirBytes))))
            for (k, v) in s.bytes.sorted(by: { $0.value > $1.value }) where v > 0 { print("    \(k): \(v)") }
            let st = s.state
            print("  state: \(st.rowVersions) versions as rows (\(st.rowAttributeBytes) bytes of attributes), \(st.packedVersions) packed (\(st.blockBytes) bytes of blocks)")
            if st.closedRows > 0 {
                print(String(format: "    the %d closed rows packed now: %d bytes (%.1f bytes/version); encode %.2f µs, decode %.2f µs per version",
                             st.closedRows, st.closedRowsPackedBytes, Double(st.closedRowsPackedBytes) / Double(st.closedRows), st.encodeMicrosPerVersion, st.decodeMicrosPerVersion))
            }
            if st.hourGroups > 0 {
                print(String(format: "    %d blocks in %d class-hours merged as compaction would: %d → %d bytes (%.2f µs per version)",
                             st.hourGroupBlocks, st.hourGroups, st.hourGroupBytes, st.hourMergedBytes, st.mergeMicrosPerVersion))
            }
        }
        if let i = result.ingest {
            print(String(format: "ingest: %d samples of %d series in %.2f s: %.0f samples/s, %.0f samples per CPU second", i.samples, i.series, i.seconds, i.samplesPerSecond, i.samplesPerCPUSecond))
        }
        if let r = result.reads {
            print(String(format: "read 24 h raw (%d samples): %.2f ms; 30 d at 1 h (%d points, %@): %.2f ms", r.raw24hSamples, r.raw24hMillis, r.rollup30dPoints, r.rollup30dTier, r.rollup30dMillis))
        }
    }

    /// Sizes and sample counts of data directory `dir` (safe while a writer uses it).
    static func measure(_ dir: String) throws -> StoreFigures {
        // Sizes first: opening the store to count creates twin.db-shm and twin.db-wal where none were.
        var files: [String: Int64] = [:]
        if let e = FileManager.default.enumerator(atPath: dir) {
            for case let rel as String in e {
                let attrs = try? FileManager.default.attributesOfItem(atPath: dir + "/" + rel)
                guard (attrs?[.type] as? FileAttributeType) == .typeRegular, let size = attrs?[.size] as? Int64 else { continue }
                files[rel.hasPrefix("wal/") ? "wal/" : rel, default: 0] += size
            }
        }
        // Packing opens sealed values and seals them again per block, as the writer does with the default policy.
        let store = try StoreOptions.openForReading(dir)
        let c = try store.counts()
        let dirBytes = files.values.reduce(0, +)
        var bytes = files.mapKeys { "file " + $0 }
        let space = try store.spaceByTable()
        for (k, v) in space ?? [:] { bytes["table " + k] = v }
        let chunkPages = space.map { ($0["chunks"] ?? 0) + ($0["chunks_by_series"] ?? 0) + ($0["chunks_level0"] ?? 0) } ?? (c["chunk_bytes"] ?? 0)
        let sampleBytes = chunkPages + (c["log_bytes"] ?? 0)
        let samples = (c["chunk_samples"] ?? 0) + (c["log_samples"] ?? 0)
        let hours = try store.sampleTimeRange().map { Double($0.1 - $0.0) / 3_600_000 } ?? 0
        return StoreFigures(dataDir: dir, samples: samples, series: c["series"] ?? 0, hours: hours,
                            bytesPerSample: samples > 0 ? Double(sampleBytes) / Double(samples) : 0, dirBytes: dirBytes,
                            dirBytesPerSample: samples > 0 ? Double(dirBytes) / Double(samples) : 0, sampleStorageBytes: sampleBytes, bytes: bytes, state: try store.stateStorageFigures())
    }

    /// Exposition text for `series` series × `samplesPerSeries` timestamps, ingested through the bulk path.
    func ingest() throws -> Ingest {
        let dir = try scratch("ingest")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var text = [UInt8]()
        text.reserveCapacity(series * samplesPerSeries * 70)
        let t0: Int64 = 1_790_000_000_000
        for i in 0..<samplesPerSeries {
            let t = String(t0 + Int64(i) * 1000)
            for s in 0..<series {
                let v = Double(s % 7 == 0 ? i * 4096 : (i * (s % 13 + 1)) % 1000) / (s % 3 == 0 ? 100 : 1)
                text.append(contentsOf: "bench_metric{instance=\"host\(s % 100)\",series=\"\(s)\"} \(v) \(t)\n".utf8)
            }
        }
        let store = try TwinStore.open(dataDir: dir)
        let writer = TwinWriter(store: store)
        try writer.open()
        let importer = BulkImporter(writer: writer)
        let cpu0 = processCPUSeconds(), wall0 = Date()
        try text.withUnsafeBytes { try importer.ingest($0) }
        try importer.flushBatch()
        try writer.finish(now: TwinTime.nowMillis())
        let seconds = Date().timeIntervalSince(wall0), cpu = processCPUSeconds() - cpu0
        let n = importer.stats.samples
        guard n == series * samplesPerSeries else { throw CLIError("ingest stored \(n) of \(series * samplesPerSeries) samples") }
        return Ingest(series: series, samples: n, seconds: seconds, cpuSeconds: cpu, samplesPerSecond: Double(n) / seconds, samplesPerCPUSecond: Double(n) / cpu)
    }

    /// One series at 1 s for 30 days (a random walk with two decimals), then timed reads.
    func reads() throws -> Reads {
        let dir = try scratch("reads")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TwinStore.open(dataDir: dir)
        let writer = TwinWriter(store: store)
        try writer.open()
        let id = try writer.seriesID(for: SeriesKey("bench_walk"), type: .gauge)
        let day: Int64 = 86_400_000
        let t0: Int64 = 1_790_000_000_000 - 1_790_000_000_000 % day
        var rng = SystemRandomNumberGenerator()
        var cents = 50_000
        var batch: [(Int64, Int64, Double)] = []
        batch.reserveCapacity(86_400)
        for i in 0..<(30 * 86_400) {
            cents = max(0, cents + Int.random(in: -25...25, using: &rng))
            batch.append((id, t0 + Int64(i) * 1000, Double(cents) / 100))
            if batch.count == 86_400 { try writer.append(batch: batch); batch.removeAll(keepingCapacity: true) }
        }
        try writer.finish(now: TwinTime.nowMillis())
        let end = t0 + 30 * day
        func median(_ body: () throws -> Int) throws -> (Int, Double) {
            var times: [Double] = []
            var n = 0
            for _ in 0..<25 {
                let a = DispatchTime.now().uptimeNanoseconds
                n = try body()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - a) / 1e6)
            }
            return (n, times.sorted()[times.count / 2])
        }
        let raw = try median { try store.samples(ids: [id], from: end - day, to: end - 1)[id]?.count ?? 0 }
        var tier = ""
        let roll = try median {
            let (points, t) = try store.aggregate(id: id, from: t0, to: end - 1, step: 3_600_000)
            tier = t
            return points.count
        }
        return Reads(raw24hSamples: raw.0, raw24hMillis: raw.1, rollup30dPoints: roll.0, rollup30dMillis: roll.1, rollup30dTier: tier)
    }

    private func scratch(_ name: String) throws -> String {
        let dir = NSTemporaryDirectory() + "hosttwin-bench-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        return dir
    }
}

func processCPUSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
}

extension Dictionary {
    func mapKeys<K: Hashable>(_ f: (Key) -> K) -> [K: Value] { Dictionary<K, Value>(uniqueKeysWithValues: map { (f($0.key), $0.value) }) }
}
