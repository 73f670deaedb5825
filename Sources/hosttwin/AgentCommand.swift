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

/// `hosttwin agent`: observe this host as `run` does into a local store, and push it to hubs.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Observe this host into a local store and push it to one or more hubs (`hosttwin serve`).",
        discussion: """
        Collects exactly as `run` does; the local store is the buffer, so nothing is lost while a hub is away: each \
        push session asks the hub where to resume, sends what the hub lacks oldest first, then every tick as it is \
        committed. The token (`hosttwin token create --role agent --host NAME` on the hub) is bound to --host-name. \
        Protocol: docs/format/sync.md.
        """
    )

    @OptionGroup var store: StoreOptions
    @OptionGroup var hostPaths: HostPathOptions
    @Option(name: .customLong("host-name"), help: ArgumentHelp("This host's name in the fleet (default: the system's host name).", valueName: "NAME"))
    var hostName: String?
    @Option(name: .customLong("push"), help: ArgumentHelp("A hub to push to, http(s)://HOST:PORT (repeatable).", valueName: "URL"))
    var pushURLs: [String] = []
    @OptionGroup var credentials: ClientCredentials
    @OptionGroup var retention: RetentionOptions
    @Option(name: .customLong("policy"), help: ArgumentHelp("The data policy applied at the source: per class of attribute, keep, hash or drop (docs/SECURITY.md); what is dropped or hashed here never leaves the host.", valueName: "FILE"))
    var policyFile: String?
    @Option(help: ArgumentHelp("Tick interval, e.g. 1s, 500ms, 5s.", valueName: "DURATION"))
    var interval: String = "1s"
    @Option(help: ArgumentHelp("Stop after this many ticks (for tests and benchmarks).", valueName: "N"))
    var ticks: Int?
    @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error.", valueName: "LEVEL"))
    var logLevel: String = "info"
    @Option(help: ArgumentHelp("How often agent and hub compare digests of what the hub holds (one round also follows each reconnect).", valueName: "DURATION"))
    var reconcileEvery: String = "10m"
    @Option(name: .customLong("catch-up-rate"), help: ArgumentHelp("The most ticks a second sent from the backlog after an outage (0: no limit); the newest tick goes on the live lane meanwhile.", valueName: "TICKS"))
    var catchUpRate: Int = 1000
    @Flag(name: .customLong("no-live-lane"), help: "Send the newest ticks only in order, behind any backlog.")
    var noLiveLane = false
    @Option(name: .customLong("alerting"), help: ArgumentHelp("This agent's allow-list of actions (docs/RULES.md): those marked `from_hub: true` run when a hub dispatches them to this host; without it the agent runs nothing a hub asks.", valueName: "FILE"))
    var alertingFile: String?

    func run() async throws {
        guard !pushURLs.isEmpty else { throw CLIError("give at least one hub with --push URL") }
        try store.embeddedOnly("agent", "keeps its host's twin in its data directory; PostgreSQL is for hubs (`serve --store`)")
        let host = hostName ?? ProcessInfo.processInfo.hostName
        guard !host.isEmpty, host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" }) else {
            throw CLIError("--host-name \(host): use letters, digits, '.', '-' and '_'")
        }
        let storage = try retention.policy()
        let intervalMs = try TwinTime.parseDuration(interval)
        guard intervalMs >= 100 else { throw CLIError("--interval must be at least 100ms") }
        let remotes = try pushURLs.map { try credentials.client(url: $0) }
        let reconcileMs = try TwinTime.parseDuration(reconcileEvery)
        guard reconcileMs >= 1000 else { throw CLIError("--reconcile-every must be at least 1s") }
        guard catchUpRate >= 0 else { throw CLIError("--catch-up-rate must be 0 (no limit) or more") }

        let alerting: AlertingConfig
        do { alerting = try alertingFile.map(AlertingConfig.load) ?? AlertingConfig() } catch let e as RuleFileErrors {
            throw CLIError("--alerting refused:\n" + e.errors.map { "  \($0)" }.joined(separator: "\n"))
        }
        if let name = alerting.actions.values.first(where: \.dispatch)?.name {
            throw CLIError("action \(name): 'dispatch: agent' is for a hub's alerting configuration; an agent gives the command and from_hub: true")
        }
        let fromHub = alerting.actions.values.filter(\.fromHub).map(\.name).sorted()

        _ = SelfMetrics.bootstrap()
        var logger = Logger(label: "hosttwin")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        logProcessTuning(logger)
        let dataDir = store.resolvedDataDir
        let twinStore = try TwinStore.open(dataDir: dataDir)
        let policy = try policyFile.map { try DataPolicy.load($0) } ?? DataPolicy()
        let keys = try KeyRing(dataDir: dataDir, create: true)
        twinStore.use(cipher: PolicyCipher(policy: policy, keys: keys))
        // Peers are named before the policy hashes their addresses, from what the (first) hub resolves.
        let book = policy.action(.connections, policy.classOf(.connections, "remote_address")) == .keep ? nil : FleetAddressBook()
        let uplinks = remotes.enumerated().map { i, remote in
            var configuration = SyncUplink.Configuration(host: host, remote: remote)
            configuration.reconcileEvery = .milliseconds(reconcileMs)
            configuration.catchUpRate = catchUpRate == 0 ? nil : catchUpRate
            configuration.liveLane = !noLiveLane
            if i == 0 { configuration.addresses = book }
            return SyncUplink(store: twinStore, configuration: configuration, logger: logger)
        }
        // Destinations no longer configured stop holding the store's history back.
        try twinStore.releaseSyncHolds(except: Set(uplinks.map(\.destination)))
        let collection = CollectionService(
            store: twinStore,
            configuration: { () -> CollectionService.Configuration in
                var c = CollectionService.Configuration(paths: hostPaths.paths, interval: intervalMs, storage: storage, dataPolicy: policy, keys: keys, maxTicks: ticks)
                c.addresses = book.map { ($0, host) }
                return c
            }(),
            sinks: uplinks, logger: logger)
        logger.info("agent \(host): observing every \(intervalMs) ms into \(dataDir), pushing to \(pushURLs.joined(separator: ", "))")
        // Hubs may dispatch the actions this agent opens to them; each hub is polled for this host's runs.
        var pollers: [ActionPoller] = []
        if !fromHub.isEmpty {
            let remediation = Remediation(config: alerting, store: twinStore, logger: logger)
            pollers = remotes.map { ActionPoller(host: host, remote: $0, remediation: remediation, logger: logger) }
            logger.info("actions hubs may dispatch to \(host): \(fromHub.joined(separator: ", "))")
        }
        let group = ServiceGroup(configuration: .init(
            // Shut down in reverse order: the collection first (its last tick committed), then the uplinks
            // (each waits, bounded, for its hub to acknowledge that tick), then the action pollers.
            services: pollers.map { .init(service: $0) } + uplinks.map { .init(service: $0) }
                + [.init(service: collection, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        ))
        try await group.run()
    }
}
