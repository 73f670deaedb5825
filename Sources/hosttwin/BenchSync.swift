import ArgumentParser
import Foundation
import TwinCore
import TwinSecurity
import TwinStorage
import TwinSync

/// `hosttwin bench sync`: bytes on the wire per sample of an agent's real data, batch by batch.
struct BenchSync: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Bytes per sample of the sync protocol on a store's real ticks: catch-up batches and live ticks.",
        discussion: """
        Reads the store's ticks (from --from, at most --ticks) and encodes them as an agent sends them: catch-up \
        batches of --batch ticks standing alone, and live batches of one tick chained on the previous one, each \
        framed (4 bytes) — as they are, and with the push session compressed as one zstd stream. Counts payload \
        bytes only (no HTTP, TLS or TCP overhead); docs/format/sync.md. Then drains the ticks into a fresh \
        temporary hub store (read, encode, decode, apply) and reports how many times real time that is. With \
        --repeat N the drain applies the ticks N times over, each pass moved an earlier span back in time and on \
        in sequence numbers (the last pass at the ticks' own times): an hour recorded under churn becomes a \
        backlog of N hours of full ticks, samples and state, draining into one hub store.
        """
    )
    @Option(help: ArgumentHelp("An agent's (or run's) data directory.", valueName: "DIR")) var dataDir: String
    @Option(help: ArgumentHelp("First tick (sequence number).", valueName: "N")) var from: UInt64 = 1
    @Option(help: ArgumentHelp("Ticks to encode at most.", valueName: "N")) var ticks = 3600
    @Option(help: ArgumentHelp("Ticks per catch-up batch.", valueName: "N")) var batch = 1800
    @Option(help: ArgumentHelp("Drain the ticks this many times over, as a backlog that many times as long.", valueName: "N")) var `repeat` = 1
    @OptionGroup var output: OutputOptions

    struct Lane: Encodable {
        var batches: Int
        var bytes: Int
        var streamBytes: Int
        var bytesPerSample: Double
        var streamBytesPerSample: Double
        var encodeMicrosPerTick: Double
        enum CodingKeys: String, CodingKey {
            case batches, bytes, streamBytes = "stream_bytes", bytesPerSample = "bytes_per_sample"
            case streamBytesPerSample = "stream_bytes_per_sample", encodeMicrosPerTick = "encode_us_per_tick"
        }
    }
    struct Apply: Encodable {
        var ticks: Int
        var seconds: Double
        var ticksPerSecond: Double
        var samplesPerSecond: Double
        /// Ticks applied per second of wall time over the ticks' own span: how many times real time a
        /// backlog drains at (read, encode, decode and apply, one core).
        var timesRealTime: Double
        enum CodingKeys: String, CodingKey { case ticks, seconds, ticksPerSecond = "ticks_per_second", samplesPerSecond = "samples_per_second", timesRealTime = "times_real_time" }
    }
    struct Result: Encodable {
        var ticks: Int
        var samples: Int
        var versionsOpened: Int
        var catchUp: Lane
        var live: Lane
        var drain: Apply
        enum CodingKeys: String, CodingKey { case ticks, samples, versionsOpened = "versions_opened", catchUp = "catch_up", live, drain }
    }

    func run() throws {
        // As the agent reads its store: sealed values opened (they travel in clear over TLS).
        let store = try StoreOptions.openForReading(dataDir)
        let reader = StoreBatches(store: store, host: "bench")
        var all: [SyncBatch] = []
        var next = from, left = ticks
        while left > 0, let b = try reader.batch(from: next, maxTicks: min(batch, left)) {
            all.append(b)
            next = b.ticks.last!.seq + 1
            left -= b.ticks.count
        }
        guard !all.isEmpty else { throw CLIError("no ticks from \(from) in \(dataDir) (a store written before positions existed has none)") }
        let tickList = all.flatMap(\.ticks)
        let samples = tickList.reduce(0) { $0 + $1.refs.count }

        func lane(_ frames: () throws -> [[UInt8]]) throws -> Lane {
            let start = DispatchTime.now().uptimeNanoseconds
            let list = try frames()
            let micros = Double(DispatchTime.now().uptimeNanoseconds - start) / 1000 / Double(tickList.count)
            let zstd = SyncStreamCompressor()
            var bytes = 0, stream = 0
            for f in list {
                let framed = withUnsafeBytes(of: UInt32(f.count).bigEndian) { Array($0) } + f
                bytes += framed.count
                stream += try zstd.compress(framed).count
            }
            return Lane(batches: list.count, bytes: bytes, streamBytes: stream, bytesPerSample: Double(bytes) / Double(samples),
                        streamBytesPerSample: Double(stream) / Double(samples), encodeMicrosPerTick: micros)
        }
        let catchUp = try lane { try all.map { try SyncCodec.encode($0).bytes } }
        let dictionary = Dictionary(all.flatMap(\.dictionary).map { ($0.ref, $0) }, uniquingKeysWith: { a, _ in a })
        let live = try lane {
            var out: [[UInt8]] = []
            var base: (UInt64, TickRecordEncoder, Set<Int64>)?
            for t in tickList {
                let b: SyncBatch
                let enc: (bytes: [UInt8], state: TickRecordEncoder)
                if let (seq, encoder, refs) = base, seq + 1 == t.seq {
                    b = SyncBatch(host: "bench", epoch: all[0].epoch, baseSeq: seq,
                                  dictionary: Set(t.refs).subtracting(refs).sorted().compactMap { dictionary[$0] }, ticks: [t])
                    enc = try SyncCodec.encode(b, base: encoder)
                } else {
                    b = SyncBatch(host: "bench", epoch: all[0].epoch, dictionary: Set(t.refs).sorted().compactMap { dictionary[$0] }, ticks: [t])
                    enc = try SyncCodec.encode(b)
                }
                out.append(enc.bytes)
                base = (t.seq, enc.state, Set(t.refs))
            }
            return out
        }
        // The drain: the same ticks read from the store, encoded, decoded and applied to a fresh hub store.
        let hubDir = NSTemporaryDirectory() + "hosttwin-bench-sync-\(getpid())"
        try? FileManager.default.removeItem(atPath: hubDir)
        defer { try? FileManager.default.removeItem(atPath: hubDir) }
        let hubWriter = TwinWriter(store: try TwinStore.open(dataDir: hubDir))
        try hubWriter.open()
        let hub = try HubIngest(writer: hubWriter)
        // Real time: the ticks at their usual spacing (gaps where the agent was stopped do not count).
        let gaps = zip(tickList.dropFirst(), tickList).map { $0.time - $1.time }.sorted()
        let spacing = gaps.isEmpty ? 1000 : gaps[gaps.count / 2]
        let passes = max(1, `repeat`)
        let span = tickList.last!.time - tickList.first!.time + spacing
        let started = DispatchTime.now().uptimeNanoseconds
        var applied = 0, appliedSamples = 0
        for pass in 0..<passes {
            let seqShift = UInt64(pass) * UInt64(tickList.count), timeShift = Int64(passes - 1 - pass) * span
            var at = from, done = 0
            while done < tickList.count, var b = try reader.batch(from: at, maxTicks: min(batch, tickList.count - done)) {
                at = b.ticks.last!.seq + 1
                for i in b.ticks.indices {
                    b.ticks[i].seq += seqShift
                    b.ticks[i].time -= timeShift
                }
                guard case .applied(let range, _) = try hub.apply(try SyncCodec.encode(b).bytes, from: "bench") else { throw CLIError("the hub did not apply ticks from \(at)") }
                done += range.count
                appliedSamples += b.ticks.reduce(0) { $0 + $1.refs.count }
            }
            applied += done
            if passes > 1, !output.json {
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
                FileHandle.standardError.write("  pass \(pass + 1)/\(passes): \(applied) ticks applied in \(String(format: "%.1f", elapsed)) s\n".data(using: .utf8)!)
            }
        }
        try hubWriter.finish(now: TwinTime.nowMillis())
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        let drain = Apply(ticks: applied, seconds: seconds, ticksPerSecond: Double(applied) / seconds, samplesPerSecond: Double(appliedSamples) / seconds,
                          timesRealTime: Double(applied) * Double(spacing) / 1000 / seconds)
        let r = Result(ticks: tickList.count, samples: samples, versionsOpened: tickList.reduce(0) { $0 + $1.opened.count }, catchUp: catchUp, live: live, drain: drain)
        if output.json { try printJSON(r); return }
        print("\(r.ticks) ticks, \(r.samples) samples (\(String(format: "%.0f", Double(r.samples) / Double(r.ticks))) a tick), \(r.versionsOpened) versions opened")
        for (name, l) in [("catch-up", catchUp), ("live", live)] {
            print(String(format: "  %@: %d batches, %d bytes = %.3f bytes/sample; as one zstd stream %d bytes = %.3f bytes/sample; encode %.1f µs/tick",
                         name, l.batches, l.bytes, l.bytesPerSample, l.streamBytes, l.streamBytesPerSample, l.encodeMicrosPerTick))
        }
        print(String(format: "  drain (read from the store, encode, decode, apply to a fresh hub): %d ticks in %.2f s, %.0f ticks/s, %.0f samples/s, %.0f× real time",
                     drain.ticks, drain.seconds, drain.ticksPerSecond, drain.samplesPerSecond, drain.timesRealTime))
    }
}
