import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import TwinCollectors
import TwinCore
import TwinSecurity
import TwinServer
import TwinStorage

/// `hosttwin run`: observe this host every tick into the embedded store and serve it over HTTP.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Observe this host every second into the store and serve it on http://127.0.0.1:9977.",
        discussion: "Runs until Ctrl-C or SIGTERM, then seals the head and stops cleanly. A restart continues the same store and records the gap as an event."
    )

    @OptionGroup var store: StoreOptions
    @OptionGroup var hostPaths: HostPathOptions
    @OptionGroup var server: ServerOptions
    @Option(help: ArgumentHelp("Tick interval, e.g. 1s, 500ms, 5s.", valueName: "DURATION"))
    var interval: String?
    @Option(help: ArgumentHelp("JSON configuration file (see docs/CLI.md).", valueName: "FILE"))
    var config: String?
    @Option(name: .customLong("backup-path"), help: ArgumentHelp("A backup file or directory whose freshness to watch (repeatable).", valueName: "PATH"))
    var backupPaths: [String] = []
    @Option(name: .customLong("disable"), help: ArgumentHelp("Turn a collector off (repeatable); `hosttwin collectors` lists them.", valueName: "NAME"))
    var disabled: [String] = []
    @Option(name: .customLong("enable"), help: ArgumentHelp("Turn a collector on (repeatable).", valueName: "NAME"))
    var enabled: [String] = []
    @Option(help: ArgumentHelp("Stop after this many ticks (for tests and benchmarks).", valueName: "N"))
    var ticks: Int?
    @OptionGroup var retention: RetentionOptions
    @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error.", valueName: "LEVEL"))
    var logLevel: String = "info"

    func run() async throws {
        let file = try config.map(RunConfig.load)
        var selection = try file?.selection() ?? CollectorSelection()
        for n in disabled { selection.enabled[n] = false }
        for n in enabled { selection.enabled[n] = true }
        do { try selection.validate() } catch { throw CLIError("\(error)") }
        let intervalMs = try TwinTime.parseDuration(interval ?? file?.interval ?? "1s")
        guard intervalMs >= 100 else { throw CLIError("--interval must be at least 100ms") }
        let dataDir = store.dataDir ?? file?.dataDir ?? StoreOptions.defaultDataDir()
        let policy = try retention.policy(file: file?.retention, headWindowFile: file?.headWindow)

        MemoryFootprint.limitMallocArenas()
        let selfMetrics = SelfMetrics.bootstrap()
        var logger = Logger(label: "hosttwin")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let twinStore = try TwinStore.open(dataDir: dataDir)
        let live = LiveTwin()
        let collectorConfig = CollectorConfig(backupPaths: backupPaths + (file?.backupPaths ?? []), extraSecretWords: file?.redactWords ?? [],
                                              processSeriesMinAge: try file?.processSeriesMinAge.map(TwinTime.parseDuration) ?? 10_000)
        let log = logger
        var api = TwinAPI(store: twinStore, live: live, metrics: selfMetrics, logger: logger)
        let setup = try server.prepare(&api, dataDir: dataDir, fileListen: file?.listen, logger: logger)
        let collection = CollectionService(store: twinStore, paths: hostPaths.paths, selection: selection, config: collectorConfig,
                                           interval: intervalMs, policy: policy, dataPolicy: setup.policy, keys: setup.keys,
                                           maxTicks: ticks, live: live, logger: logger)
        let app = try TwinHTTPServer.application(api: api, host: setup.host, port: setup.port, tls: setup.tls, logger: logger) { actualPort in
            log.info("serving \(setup.url):\(actualPort)/ (dashboard /, Prometheus API /api/v1/query, state API /api/v1/twin/...)")
        }
        logger.info("observing this host every \(intervalMs) ms into \(dataDir)")
        let group = ServiceGroup(configuration: .init(
            services: [
                .init(service: collection, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup),
                .init(service: app),
                .init(service: AuditAnchorService(audit: setup.audit)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        ))
        try await group.run()
    }
}

/// The collection loop: every tick, run the due collectors and commit what they saw as one transaction.
struct CollectionService: Service {
    let store: TwinStore
    let paths: HostPaths
    let selection: CollectorSelection
    let config: CollectorConfig
    let interval: Int64
    let policy: StoragePolicy
    /// Hash and drop rules applied to each tick's entities before they are compared or stored.
    let dataPolicy: DataPolicy
    let keys: KeyRing
    let maxTicks: Int?
    let live: LiveTwin
    let logger: Logger
    let metrics = CollectionMetrics()

    /// The loop's collectors and writer. Only the collection thread touches them after `begin`; the
    /// box is `@unchecked Sendable` to hand them to that thread.
    final class Loop: @unchecked Sendable {
        let sampler: Sampler
        let writer: TwinWriter
        var count = 0
        var lastError: String?
        init(sampler: Sampler, writer: TwinWriter) {
            self.sampler = sampler
            self.writer = writer
        }
    }

    /// Wakes the collection thread at its next tick or when asked to stop.
    final class Stopper: @unchecked Sendable { // state guarded by `condition`
        private let condition = NSCondition()
        private var stopped = false

        func stop() {
            condition.lock()
            stopped = true
            condition.signal()
            condition.unlock()
        }

        /// Sleeps until `deadline` (ms since the epoch); true when a stop was requested.
        func sleep(until deadline: Int64) -> Bool {
            condition.lock()
            defer { condition.unlock() }
            while !stopped, TwinTime.nowMillis() < deadline {
                _ = condition.wait(until: Date(timeIntervalSince1970: Double(deadline) / 1000))
            }
            return stopped
        }
    }

    func run() async throws {
        let loop = Loop(sampler: Sampler(paths: paths, selection: selection, config: config, tick: interval),
                        writer: TwinWriter(store: store, policy: policy, report: { [logger] in logger.warning("\($0)") },
                                           afterSeal: {
                                               // Sealing and compaction ran code and heap the per-tick path does not use.
                                               MemoryFootprint.releaseFreedMemory()
                                               MemoryFootprint.limitCodeFaultAround()
                                           }))
        try loop.writer.begin(now: TwinTime.nowMillis(), interval: interval)
        logger.info("collectors: \(loop.sampler.collectorNames.joined(separator: " "))")
        // The loop runs on a thread of its own: one timed wait per tick, none of the task and timer
        // machinery of the async runtime on the per-second path (docs/ARCHITECTURE.md).
        let stopper = Stopper()
        try await withGracefulShutdownHandler {
            try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
                let thread = Thread {
                    self.tickLoop(loop, stopper)
                    done.resume()
                }
                thread.name = "hosttwin-collect"
                thread.start()
            }
        } onGracefulShutdown: {
            stopper.stop()
        }
        live.close()
        let (writer, count) = (loop.writer, loop.count)
        try writer.finish(now: TwinTime.nowMillis())
        logger.info("stopped after \(count) ticks; store sealed")
    }

    private func tickLoop(_ loop: Loop, _ stopper: Stopper) {
        while maxTicks.map({ loop.count < $0 }) ?? true {
            // Ticks sit on the interval grid, so timestamps are regular (cheap to compress) and comparable across hosts.
            let next = (TwinTime.nowMillis() / interval + 1) * interval
            if stopper.sleep(until: next) { return }
            let started = DispatchTime.now().uptimeNanoseconds
            var obs = loop.sampler.tick(now: next)
            dataPolicy.apply(to: &obs.entities, keys: keys)
            let result: TwinWriter.TickResult
            defer {
                metrics.tick(durationNanos: Int64(DispatchTime.now().uptimeNanoseconds - started), health: obs.health,
                             sealQueue: loop.writer.sealQueueDepth, stored: loop.lastError == nil)
            }
            do {
                result = try loop.writer.commit(obs, health: obs.health)
                if loop.lastError != nil { logger.notice("collection resumed: tick \(TwinTime.rfc3339(next)) stored") }
                loop.lastError = nil
                for e in result.events where e.kind == .listeningPorts || e.kind == .services {
                    logger.debug("\(e.type.rawValue) \(e.kind!.rawValue) \(e.key ?? "")")
                }
            } catch {
                // A failed commit (disk full, locked database) loses this tick only; the next ticks retry.
                let msg = "\(error)"
                if msg != loop.lastError { logger.error("collection paused, tick \(TwinTime.rfc3339(next)) not stored (retrying every tick): \(msg)") }
                loop.lastError = msg
                continue
            }
            live.update(samples: obs.samples, types: obs.types, host: obs.entities[.host]?.first?.attributes,
                        health: Array(loop.sampler.health.values).sorted { $0.collector < $1.collector }, tick: next,
                        events: dataPolicy.redactedForReaders(result.events)) // the stream is shared by every caller
            loop.count += 1
            if loop.count == 3 { MemoryFootprint.limitCodeFaultAround() }
        }
    }
}
