import ArgumentParser
import Foundation
import Logging
import TwinCollectors
import TwinCore
import TwinRuntime
import TwinStorage

/// `hosttwin bench remote-write`: what sending a backlog by Prometheus remote_write costs, on both sides.
struct BenchRemoteWrite: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remote-write",
        abstract: "Throughput and CPU per sample of remote_write from a twin to a receiver (and the receiver's, with --receiver-pid).",
        discussion: """
        Writes a temporary twin of --series series (gauges and counters, labelled with a run id so runs never \
        collide at the receiver) with --minutes of 1 s ticks ending now, then sends all of it to --url as \
        `--remote-write` does (its rounds, shards and request size), and reports samples a second, request \
        bytes per sample, and this process's CPU per sample (reading the store, encoding, sending). With \
        --receiver-pid, the receiver's CPU per sample too (from /proc: start it on this host). \
        scripts/bench-remote-write.sh runs it against Prometheus, VictoriaMetrics and a HostTwin hub.
        """
    )
    @Option(help: ArgumentHelp("The receiver, e.g. http://127.0.0.1:9090/api/v1/write.", valueName: "URL")) var url: String
    @Option(name: .customLong("receiver-pid"), help: ArgumentHelp("The receiver's process, for its CPU time.", valueName: "PID")) var receiverPID: Int32?
    @Option(name: .customLong("token-file"), help: ArgumentHelp("A bearer token for the receiver.", valueName: "FILE")) var tokenFile: String?
    @Option(help: ArgumentHelp("Series in the twin.", valueName: "N")) var series = 1_000
    @Option(help: ArgumentHelp("Minutes of 1 s ticks (at most 50: receivers refuse samples much older than their newest).", valueName: "N")) var minutes = 10
    @Option(help: ArgumentHelp("Shards (connections sending at once).", valueName: "N")) var shards = 4
    @Option(name: .customLong("max-samples-per-send"), help: ArgumentHelp("Samples per request.", valueName: "N")) var maxSamplesPerSend = 2_000
    @OptionGroup var output: OutputOptions

    struct Result: Encodable {
        var url: String
        var series: Int
        var samples: Int
        var requests: Int
        var dropped: Int
        var seconds: Double
        var samplesPerSecond: Double
        var bytesPerSample: Double
        var senderMicrosPerSample: Double
        var receiverMicrosPerSample: Double?
        enum CodingKeys: String, CodingKey {
            case url, series, samples, requests, dropped, seconds, samplesPerSecond = "samples_per_second", bytesPerSample = "bytes_per_sample"
            case senderMicrosPerSample = "sender_us_per_sample", receiverMicrosPerSample = "receiver_us_per_sample"
        }
    }

    func run() async throws {
        guard (1...50).contains(minutes), (1...1_000_000).contains(series) else { throw CLIError("--minutes 1-50 and --series 1-1000000") }
        let dir = NSTemporaryDirectory() + "hosttwin-bench-rw-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TwinStore.open(dataDir: dir)
        let writer = TwinWriter(store: store)
        let ticks = minutes * 60
        let first = (TwinTime.nowMillis() / 1000 - Int64(ticks)) * 1000
        let runID = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        if !output.json { print("writing \(series) series × \(ticks) ticks into a temporary twin (run \(runID))") }
        try writer.begin(now: first - 1, interval: 1000)
        var gauge = SeededRandom(seed: 7)
        for i in 0..<ticks {
            var o = Observation(timestamp: first + Int64(i) * 1000)
            for s in 0..<series {
                if s % 2 == 0 {
                    o.add("bench_rw_counter_total", Labels(["run": runID, "i": String(s)]), Double(i * (s % 13 + 1)), .counter)
                } else {
                    o.add("bench_rw_gauge", Labels(["run": runID, "i": String(s)]), Double(Int(gauge.next() % 10_000)) / 100)
                }
            }
            try writer.commit(o)
        }
        try writer.finish(now: first + Int64(ticks) * 1000)

        let token = try RemoteOptions.token(file: tokenFile)
        var settings = RemoteWriteSender.Settings()
        settings.shards = shards
        settings.maxSamplesPerSend = maxSamplesPerSend
        let destination: RemoteWriteSender.Destination
        do { destination = try .init(url: url, token: tokenFile == nil ? nil : token) } catch { throw CLIError("\(error)") }
        var logger = Logger(label: "hosttwin")
        logger.logLevel = .warning
        let sender = RemoteWriteSender(store: store, destination: destination, hub: false, settings: settings, logger: logger)
        try store.saveRemoteWritePositions(destination: destination.name, ["*": first - 1])
        let last = first + Int64(ticks - 1) * 1000
        let cpu0 = processCPUMicros(), receiver0 = receiverPID.map { cpuMicros(ofProcess: $0) }
        let clock = ContinuousClock.now
        var total = RemoteWriteSender.Round()
        while true {
            let r = try await sender.round(now: TwinTime.nowMillis())
            total.samples += r.samples
            total.requests += r.requests
            total.bytes += r.bytes
            total.dropped += r.dropped
            if r.positions.isEmpty || (r.positions[""] ?? 0) >= last { break }
        }
        let elapsed = ContinuousClock.now - clock
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        // The receiver's last requests may still be applying: a moment for its CPU time to settle.
        if receiverPID != nil { try await Task.sleep(for: .seconds(2)) }
        let n = Double(max(total.samples, 1))
        let result = Result(url: destination.name, series: series, samples: total.samples, requests: total.requests, dropped: total.dropped,
                            seconds: seconds, samplesPerSecond: Double(total.samples) / max(seconds, 1e-9), bytesPerSample: Double(total.bytes) / n,
                            senderMicrosPerSample: Double(processCPUMicros() - cpu0) / n,
                            receiverMicrosPerSample: receiverPID.map { Double(cpuMicros(ofProcess: $0) - (receiver0 ?? 0)) / n })
        if output.json { try printJSON(result); return }
        print("""
            \(result.samples) samples of \(series) series in \(result.requests) requests to \(result.url): \(String(format: "%.2f", seconds)) s, \
            \(Int(result.samplesPerSecond)) samples/s, \(String(format: "%.2f", result.bytesPerSample)) bytes a sample; \
            sender \(String(format: "%.2f", result.senderMicrosPerSample)) µs CPU a sample\
            \(result.receiverMicrosPerSample.map { String(format: ", receiver %.2f µs", $0) } ?? "")\
            \(result.dropped > 0 ? "; \(result.dropped) samples DROPPED (refused by the receiver)" : "")
            """)
    }
}
