import ArgumentParser
import Foundation
import TwinCore
import TwinQuery
import TwinStorage
import TwinSync

/// `hosttwin bench hub`: a hub's ingest of many agents at once, from an agent's recorded ticks.
struct BenchHub: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hub",
        abstract: "Hub ingest: --hosts simulated agents replaying an agent's recorded ticks as live batches, applied to a fresh hub store.",
        discussion: """
        Reads --ticks ticks of the store in --data-dir and encodes them as each of --hosts agents would send them \
        live (the first batch standing alone, then one tick chained on the previous one; a host name of its own \
        each, so each host is its own series and entities at the hub). Then applies them tick by tick across all \
        hosts (as agents at 1 s would arrive) to a fresh hub store on one thread: the first tick of every host (the \
        fleet joining) timed apart, then the steady state, reported as samples/s per CPU second, with the hub's \
        resident memory and the latency of a PromQL query across every host afterwards. \
        Encoding is done before the clock starts; decoding and applying are timed. With --store the hub's \
        tables are in that PostgreSQL database (which must hold no HostTwin data), and the PostgreSQL server's \
        CPU in the same spans (its processes on this machine) is reported beside the hub's.
        """
    )
    @Option(help: ArgumentHelp("An agent's (or run's) data directory.", valueName: "DIR")) var dataDir: String
    @Option(help: ArgumentHelp("Simulated hosts.", valueName: "N")) var hosts = 1000
    @Option(help: ArgumentHelp("Ticks per host.", valueName: "N")) var ticks = 60
    @Option(help: ArgumentHelp("Batches applied together (one log write, one transaction), as a hub groups what arrives at once; 1: one by one.", valueName: "N")) var group = 512
    @Option(name: .customLong("store"), help: ArgumentHelp("Keep the hub's tables in this (empty) PostgreSQL database instead of SQLite.", valueName: "URL")) var storeURL: String?
    @OptionGroup var output: OutputOptions

    struct Result: Encodable {
        var hosts: Int
        var ticks: Int
        var samples: Int
        var wallSeconds: Double
        var cpuSeconds: Double
        var samplesPerCPUSecond: Double
        var hostTicksPerSecond: Double
        var residentBytes: Int
        /// The first query pays for loading the series catalog and decoding the unsealed log; the same
        /// query again is what a long-lived server pays.
        var queryMillis: Double
        var queryAgainMillis: Double
        /// The first batch of every host (all its series and entities): a fleet joining at once.
        var joinWallSeconds: Double
        var joinCPUSeconds: Double
        /// `sqlite`, or `postgres` with the server's CPU seconds in the join and the steady state.
        var engine: String
        var serverJoinCPUSeconds: Double?
        var serverCPUSeconds: Double?
        enum CodingKeys: String, CodingKey {
            case hosts, ticks, samples, wallSeconds = "wall_seconds", cpuSeconds = "cpu_seconds", samplesPerCPUSecond = "samples_per_cpu_second"
            case hostTicksPerSecond = "host_ticks_per_second", residentBytes = "resident_bytes", queryMillis = "query_ms", queryAgainMillis = "query_again_ms"
            case joinWallSeconds = "join_wall_seconds", joinCPUSeconds = "join_cpu_seconds"
            case engine, serverJoinCPUSeconds = "server_join_cpu_seconds", serverCPUSeconds = "server_cpu_seconds"
        }
    }

    func run() throws {
        guard hosts > 0, ticks > 1, group > 0 else { throw CLIError("--hosts and --group must be positive and --ticks at least 2") }
        let store = try StoreOptions.openForReading(dataDir)
        guard let recorded = try StoreBatches(store: store, host: "bench").batch(from: 1, maxTicks: ticks), recorded.ticks.count == ticks else {
            throw CLIError("\(dataDir) holds fewer than \(ticks) ticks from tick 1")
        }
        let definitions = Dictionary(recorded.dictionary.map { ($0.ref, $0) }, uniquingKeysWith: { a, _ in a })
        // Each host's frames, as its agent would send them live.
        FileHandle.standardError.write(Data("encoding \(hosts) × \(ticks) live batches…\n".utf8))
        var frames: [[[UInt8]]] = []
        frames.reserveCapacity(hosts)
        for h in 0..<hosts {
            let name = String(format: "host-%05d", h)
            var out: [[UInt8]] = []
            var base: (encoder: TickRecordEncoder, refs: Set<Int64>)?
            for t in recorded.ticks {
                let fresh = Set(t.refs).subtracting(base?.refs ?? []).sorted().compactMap { definitions[$0] }
                let b = SyncBatch(host: name, epoch: recorded.epoch, baseSeq: base == nil ? nil : t.seq - 1, dictionary: fresh, ticks: [t])
                let encoded = try SyncCodec.encode(b, base: base?.encoder)
                out.append(encoded.bytes)
                base = (encoded.state, Set(t.refs))
            }
            frames.append(out)
        }
        let samples = (recorded.sampleCount - recorded.ticks[0].refs.count) * hosts

        let hubDir = NSTemporaryDirectory() + "hosttwin-bench-hub-\(getpid())"
        try? FileManager.default.removeItem(atPath: hubDir)
        defer { try? FileManager.default.removeItem(atPath: hubDir) }
        let database = try StoreOptions.database(storeURL)
        let hubStore = try TwinStore.open(dataDir: hubDir, tablesIn: database)
        guard try hubStore.counts()["series"] == 0 else { throw CLIError("--store: the database already holds HostTwin data; give the benchmark an empty one") }
        // The server's processes on this machine (PostgreSQL's), for its CPU beside the hub's.
        let serverCPU: () -> Double? = { database == nil ? nil : commandCPUSeconds("postgres") }
        let writer = TwinWriter(store: hubStore)
        try writer.open()
        let hub = try HubIngest(writer: writer)
        // Batches that arrive together are applied as a group (the hub's group commit), up to --group.
        let names = (0..<hosts).map { String(format: "host-%05d", $0) }
        func apply(tick i: Int) throws {
            for start in stride(from: 0, to: hosts, by: group) {
                let part = start..<min(start + group, hosts)
                for (h, result) in zip(part, try hub.applyGroup(part.map { (frames[$0][i], names[$0]) })) {
                    guard case .success(.applied) = result else { throw CLIError("host \(h) tick \(i) was not applied: \(result)") }
                }
            }
        }
        // Every host joins (its first batch: all its series and entities), then the steady state is timed.
        FileHandle.standardError.write(Data("applying: every host's first batch…\n".utf8))
        var cpu0 = processCPUSeconds(), wall0 = DispatchTime.now().uptimeNanoseconds, server0 = serverCPU()
        try apply(tick: 0)
        let joinWall = Double(DispatchTime.now().uptimeNanoseconds - wall0) / 1e9, joinCPU = processCPUSeconds() - cpu0
        let serverJoin = serverCPU().flatMap { a in server0.map { a - $0 } }
        FileHandle.standardError.write(Data("applying: \(ticks - 1) more ticks of every host…\n".utf8))
        cpu0 = processCPUSeconds(); wall0 = DispatchTime.now().uptimeNanoseconds; server0 = serverCPU()
        for i in 1..<ticks { try apply(tick: i) }
        let wall = Double(DispatchTime.now().uptimeNanoseconds - wall0) / 1e9, cpu = processCPUSeconds() - cpu0
        let serverSteady = serverCPU().flatMap { a in server0.map { a - $0 } }
        let resident = Int(residentBytes(pid: getpid()))
        let engine = PromQLEngine(source: StoreSampleSource(store: writer.store))
        let query = try PromQLParser.parse("sum by (host) (rate(node_cpu_seconds_total[1m]))")
        var q0 = DispatchTime.now().uptimeNanoseconds
        _ = try engine.instant(query, at: recorded.ticks.last!.time)
        let queryMillis = Double(DispatchTime.now().uptimeNanoseconds - q0) / 1e6
        q0 = DispatchTime.now().uptimeNanoseconds
        _ = try engine.instant(query, at: recorded.ticks.last!.time)
        let againMillis = Double(DispatchTime.now().uptimeNanoseconds - q0) / 1e6
        try writer.finish(now: TwinTime.nowMillis())
        let r = Result(hosts: hosts, ticks: ticks, samples: samples, wallSeconds: wall, cpuSeconds: cpu, samplesPerCPUSecond: Double(samples) / cpu,
                       hostTicksPerSecond: Double(hosts * (ticks - 1)) / wall, residentBytes: resident, queryMillis: queryMillis, queryAgainMillis: againMillis,
                       joinWallSeconds: joinWall, joinCPUSeconds: joinCPU, engine: database == nil ? "sqlite" : "postgres",
                       serverJoinCPUSeconds: serverJoin, serverCPUSeconds: serverSteady)
        if output.json { return try printJSON(r) }
        if let serverJoin, let serverSteady {
            print(String(format: "store in PostgreSQL: its server's CPU %.2f s in the join, %.2f s in the steady state (%.0f samples per CPU second of hub and server together)",
                         serverJoin, serverSteady, Double(samples) / (cpu + serverSteady)))
        }
        print(String(format: "%d hosts joined (first batch each: all series and entities) in %.2f s wall, %.2f s CPU", hosts, joinWall, joinCPU))
        print(String(format: "then %d hosts × %d ticks = %d samples (%d a tick) applied in %.2f s wall, %.2f s CPU: %.0f samples per CPU second, %.0f host-ticks/s (%.1f× what %d hosts at 1 s need)",
                     hosts, ticks - 1, samples, recorded.sampleCount / ticks, wall, cpu, r.samplesPerCPUSecond, r.hostTicksPerSecond, r.hostTicksPerSecond / Double(hosts), hosts))
        print(String(format: "hub resident memory %.0f MB; `sum by (host) (rate(node_cpu_seconds_total[1m]))` over every host: %.1f ms, again %.1f ms",
                     Double(resident) / 1e6, r.queryMillis, r.queryAgainMillis))
    }
}
