import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import TwinCollectors
import TwinCore
import TwinRules
import TwinRuntime
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
    @Option(name: .customLong("watch"), help: ArgumentHelp("A file or directory whose configuration history to keep (repeatable; replaces the default /etc). `hosttwin files` reads it.", valueName: "PATH"))
    var watchPaths: [String] = []
    @Option(help: ArgumentHelp("Directory of *.prom files for the textfile collector (default: /var/lib/prometheus/node-exporter, node_exporter's on Debian).", valueName: "DIR"))
    var textfileDirectory: String?
    @Option(name: .customLong("disable"), help: ArgumentHelp("Turn a collector off (repeatable); `hosttwin collectors` lists them.", valueName: "NAME"))
    var disabled: [String] = []
    @Option(name: .customLong("enable"), help: ArgumentHelp("Turn a collector on (repeatable).", valueName: "NAME"))
    var enabled: [String] = []
    @Option(help: ArgumentHelp("Stop after this many ticks (for tests and benchmarks).", valueName: "N"))
    var ticks: Int?
    @Option(help: ArgumentHelp("CPU run may spend, as a share of one core (e.g. 0.2%, 1%): ticks always run; change-driven capture between ticks only within it; over it, the non-essential collectors slow down.", valueName: "SHARE"))
    var cpuBudget: String = "0.2%"
    @Flag(inversion: .prefixedNo, help: "Capture changes between ticks: processes from the kernel's process events, watched files from inotify, listeners by fast polls while they change.")
    var changeDriven = true
    @OptionGroup var retention: RetentionOptions
    @OptionGroup var ruleOptions: RuleOptions
    @OptionGroup var remoteWrite: RemoteWriteOptions
    @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error.", valueName: "LEVEL"))
    var logLevel: String = "info"

    /// "0.2%" or "0.002" → 0.002 of one core; refuses 0, negatives, more than a core and non-numbers.
    static func share(_ text: String) throws -> Double {
        let t = text.trimmingCharacters(in: .whitespaces)
        let v = t.hasSuffix("%") ? Double(t.dropLast()).map { $0 / 100 } : Double(t)
        guard let v, v.isFinite, v > 0, v <= 1 else { throw CLIError("--cpu-budget takes a share of one core above 0 and at most 100%, e.g. 0.2% (got \(text))") }
        return v
    }

    func run() async throws {
        let file = try config.map(RunConfig.load)
        var selection = try file?.selection() ?? CollectorSelection()
        for n in disabled { selection.enabled[n] = false }
        for n in enabled { selection.enabled[n] = true }
        do { try selection.validate() } catch { throw CLIError("\(error)") }
        let intervalMs = try TwinTime.parseDuration(interval ?? file?.interval ?? "1s")
        let budget = try Self.share(cpuBudget)
        guard intervalMs >= 100 else { throw CLIError("--interval must be at least 100ms") }
        let dataDir = store.dataDir ?? file?.dataDir ?? StoreOptions.defaultDataDir()
        let policy = try retention.policy(file: file?.retention, headWindowFile: file?.headWindow)
        let receivers = try remoteWrite.destinations()
        try store.embeddedOnly("run", "keeps one host's twin in its data directory; PostgreSQL is for hubs (`serve --store`)")

        let selfMetrics = SelfMetrics.bootstrap()
        var logger = Logger(label: "hosttwin")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        logProcessTuning(logger)
        let twinStore = try TwinStore.open(dataDir: dataDir)
        let live = LiveTwin()
        let collectorConfig = CollectorConfig(backupPaths: backupPaths + (file?.backupPaths ?? []), extraSecretWords: file?.redactWords ?? [],
                                              processSeriesMinAge: try file?.processSeriesMinAge.map(TwinTime.parseDuration) ?? 10_000,
                                              textfileDirectory: textfileDirectory ?? file?.textfileDirectory,
                                              watchPaths: try FilesCommand.watchList(watchPaths.isEmpty ? file?.watchPaths ?? ["/etc"] : watchPaths),
                                              suidPaths: file?.suidPaths ?? CollectorConfig.defaultSUIDPaths)
        let log = logger
        var api = TwinAPI(store: twinStore, live: live, metrics: selfMetrics, logger: logger)
        let setup = try server.prepare(&api, dataDir: dataDir, fileListen: file?.listen, logger: logger)
        let rules = try ruleOptions.service(store: twinStore, fileRules: file?.rules ?? [], fileDefaults: file?.defaultRules, fileCompliance: file?.compliance, fileAlerting: file?.alerting, logger: logger)
        api.rules = rules.runner
        var collecting = CollectionService.Configuration(paths: hostPaths.paths, selection: selection, collectors: collectorConfig, interval: intervalMs,
                                                         storage: policy, dataPolicy: setup.policy, keys: setup.keys, maxTicks: ticks, changeDriven: changeDriven)
        collecting.cpuBudget = budget
        let collection = CollectionService(store: twinStore, configuration: collecting, sinks: [live, rules], logger: logger)
        let app = try TwinHTTPServer.service(api: api, host: setup.host, port: setup.port, tls: setup.tls, logger: logger) { actualPort in
            log.info("serving \(setup.url):\(actualPort)/ (dashboard /, Prometheus API /api/v1/query, state API /api/v1/twin/...)")
        }
        logger.info("observing this host every \(intervalMs) ms into \(dataDir)")
        let senders = remoteWrite.senders(receivers, store: twinStore, hub: false, logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: senders.map { .init(service: $0) } + [
                .init(service: collection, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup),
                .init(service: app),
                .init(service: AuditAnchorService(audit: setup.audit)),
                .init(service: AnomalyMonitorService(store: twinStore, logger: logger)),
                .init(service: rules, successTerminationBehavior: .ignore),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        ))
        do { try await group.run() } catch { throw TwinHTTPServer.explainingListen(error, host: setup.host, port: setup.port) }
    }
}
