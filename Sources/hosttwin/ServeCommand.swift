import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import TwinCore
import TwinRules
import TwinQuery
import TwinServer
import TwinRuntime
import TwinSecurity
import TwinStorage
import TwinSync

/// `hosttwin serve`: the HTTP API over an existing store, without observing this host.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a store's API (Prometheus-compatible query API, state API) without collecting.",
        discussion: """
        When no `hosttwin run` writes the data directory, the server is a hub: agents (`hosttwin agent --push URL`) push         their hosts' twins into it, each host's series labelled host=NAME and its entities keyed NAME/KEY. A hub relays         what it holds to hubs upstream (--push URL, with a `relay` token), keeping each batch in its outbox until every         upstream holds it. With --follow URL the server is a read-only replica of another hub (the cloud observer): it         pulls with its own cursor and accepts no pushes. Beside a running `run` (or with --read-only), it serves the         store read-only. Protocol: docs/format/sync.md.
        """
    )

    @OptionGroup var store: StoreOptions
    @OptionGroup var server: ServerOptions
    @Flag(name: .customLong("read-only"), help: "Only serve the store: never write it, accept no pushes (so `hosttwin run` can start on it later).")
    var readOnly = false
    @Option(name: .customLong("push"), help: ArgumentHelp("A hub upstream to relay every host to, http(s)://HOST:PORT (repeatable; a `relay` token there).", valueName: "URL"))
    var pushURLs: [String] = []
    @Option(name: .customLong("datacenter"), help: ArgumentHelp("This hub's datacenter: recorded for the hosts whose agents push here, and named to hubs upstream (`hosttwin fleet` shows it).", valueName: "NAME"))
    var datacenter: String?
    @Option(name: .customLong("forward-policy"), help: ArgumentHelp("A data policy applied to what is relayed to every --push hub (drop or hash classes of values there, e.g. `drop sensitive`); this hub keeps what it received.", valueName: "FILE"))
    var forwardPolicy: String?
    @Option(name: .customLong("follow"), help: ArgumentHelp("Be a read-only replica of the hub at this URL (a `relay` token there).", valueName: "URL"))
    var followURL: String?
    @Option(name: .customLong("outbox-keep"), help: ArgumentHelp("How long applied batches stay in the outbox for followers once every upstream holds them.", valueName: "DURATION"))
    var outboxKeep: String = "1h"
    @Option(name: .customLong("hub-name"), help: ArgumentHelp("This hub's name among the hubs sharing one --store database: its head-log rows and its lock. Two running hubs need two names; a hub that stops leaves its hosts and its unsealed rows to the others.", valueName: "NAME"))
    var hubName = "main"
    @Option(name: .customLong("catch-up-rate"), help: ArgumentHelp("The most backlog ticks applied a second, over all hosts (0: no limit); live ticks never wait.", valueName: "TICKS"))
    var catchUpRate: Int = 5_000
    @OptionGroup var credentials: ClientCredentials
    @OptionGroup var ruleOptions: RuleOptions
    @OptionGroup var remoteWrite: RemoteWriteOptions
    @Option(name: .customLong("remote-write-host-label"), help: ArgumentHelp("The label of series received by remote_write (/api/v1/write) that names their host; a :PORT after it is dropped.", valueName: "LABEL"))
    var remoteWriteHostLabel = "instance"
    @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error.", valueName: "LEVEL")) var logLevel: String = "info"

    func run() async throws {
        if followURL != nil, !pushURLs.isEmpty { throw CLIError("--follow and --push: a replica does not relay") }
        if followURL != nil, readOnly { throw CLIError("--follow writes the replica's own store: drop --read-only") }
        if forwardPolicy != nil, pushURLs.isEmpty { throw CLIError("--forward-policy applies to what is relayed: give --push URL") }
        let forward = try forwardPolicy.map { try DataPolicy.load($0) }
        let keepMillis = try TwinTime.parseDuration(outboxKeep)
        guard catchUpRate >= 0 else { throw CLIError("--catch-up-rate must be 0 (no limit) or more") }
        guard !hubName.isEmpty, hubName.count <= 64, hubName.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw CLIError("--hub-name \(hubName): use up to 64 letters, digits, '.', '-' and '_'")
        }
        if hubName != "main", store.storeURL == nil { throw CLIError("--hub-name names a hub among those sharing a --store database: give --store URL") }
        if let d = datacenter, d.isEmpty || d.count > 64 || !d.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) {
            throw CLIError("--datacenter \(d): use up to 64 letters, digits, '.', '-' and '_'")
        }
        let upstreams = try pushURLs.map { try credentials.client(url: $0) }
        let followed = try followURL.map { try credentials.client(url: $0) }
        let receivers = try remoteWrite.destinations()
        var logger = Logger(label: "hosttwin")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        // A hub when the store is free to write (agents push into it); a reader beside `run` otherwise.
        var hub: HubReceiver?
        let twinStore: TwinStore
        do {
            if readOnly { throw TwinError.unavailable("another HostTwin writer: --read-only") }
            let writable = try store.open(hub: hubName)
            // Before the open versions are loaded: their keys and attributes are sealed on disk.
            try server.attachCipher(to: writable, dataDir: writable.dataDir)
            let writer = TwinWriter(store: writable, report: { [logger] in logger.warning("\($0)") })
            try writer.open()
            hub = try HubReceiver(writer: writer, datacenter: datacenter)
            hub?.catchUpLimit = catchUpRate > 0 ? RateLimiter(perSecond: catchUpRate) : nil
            hub?.remoteWriteHostLabel = remoteWriteHostLabel
            twinStore = writable
        } catch let TwinError.unavailable(why) where why.contains("another HostTwin writer") {
            if followURL != nil || !upstreams.isEmpty { throw CLIError("\(why): --follow and --push need the data directory to themselves") }
            if !readOnly { logger.notice("\(why.prefix(120)): serving it read-only, without accepting pushes") }
            twinStore = try store.openForReading()
        }
        var api = TwinAPI(store: twinStore, live: nil, metrics: SelfMetrics.bootstrap(), logger: logger)
        // A replica applies what it follows and nothing pushed.
        api.sync = followed == nil ? hub : nil
        api.remoteWriteReceiver = followed == nil ? hub : nil
        let setup = try server.prepare(&api, dataDir: twinStore.dataDir, logger: logger)
        hub?.keys = setup.keys // hashes asked for by a follower token's policy
        // A hub evaluates the rules per host (series and entities carry `host`), every second so an action it
        // dispatches reaches the host's agent within seconds; a replica only serves.
        let isHub = hub != nil && followed == nil
        api.agentActions = isHub ? AgentActionQueue(store: twinStore) : nil
        let rules = isHub ? try ruleOptions.service(store: twinStore, timer: 1_000, dispatcher: api.agentActions, logger: logger) : nil
        api.rules = rules?.runner
        let log = logger
        let role = followed.map { "; a read-only replica of \($0.host):\($0.port)" }
            ?? (hub == nil ? "" : "; accepting pushes from agents (/api/v1/sync/push) and Prometheus remote_write (/api/v1/write)" + (upstreams.isEmpty ? "" : ", relaying to \(pushURLs.joined(separator: ", "))"))
        let app = try TwinHTTPServer.service(api: api, host: setup.host, port: setup.port, tls: setup.tls, logger: logger) { actualPort in
            log.info("serving \(twinStore.dataDir) on \(setup.url):\(actualPort)/\(role)")
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: app), .init(service: AuditAnchorService(audit: setup.audit))]
        if let hub {
            // Hashes upstream use this hub's key ring: comparable there, not readable.
            let rewrite = forward.map { $0.stateRewrite(keys: setup.keys, addresses: hub.addresses) }
            if !upstreams.isEmpty { hub.tap = LiveTap() }
            let relays = upstreams.map { RelayUplink(store: twinStore, remote: $0, logger: logger, datacenter: datacenter, tap: hub.tap,
                                                     addresses: hub.addresses, rewrite: rewrite) }
            services += relays.map { .init(service: $0) }
            services.append(.init(service: OutboxPruner(store: twinStore, relays: relays, keepMillis: keepMillis, logger: logger)))
            services.append(.init(service: AnomalyMonitorService(store: twinStore, logger: logger)))
            if let followed { services.append(.init(service: FollowService(receiver: hub, remote: followed, logger: logger))) }
        }
        if let rules { services.append(.init(service: rules)) }
        if !receivers.isEmpty {
            guard hub != nil else { throw CLIError("--remote-write sends from a store this server writes (a hub or a replica); beside `run`, give --remote-write to `run`") }
            services += remoteWrite.senders(receivers, store: twinStore, hub: true, logger: logger).map { .init(service: $0) }
        }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do { try await group.run() } catch { throw TwinHTTPServer.explainingListen(error, host: setup.host, port: setup.port) }
        try hub?.finish()
    }
}
