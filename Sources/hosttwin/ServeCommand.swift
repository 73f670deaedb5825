import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import TwinCore
import TwinQuery
import TwinServer
import TwinRuntime
import TwinStorage

/// `hosttwin serve`: the HTTP API over an existing store, without observing this host.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a store's API (Prometheus-compatible query API, state API) without collecting.",
        discussion: "When no `hosttwin run` writes the data directory, the server is a hub: agents (`hosttwin agent --push URL`) push their hosts' twins into it, each host's series labelled host=NAME and its entities keyed NAME/KEY. Beside a running `run` (or with --read-only), it serves the store read-only."
    )

    @OptionGroup var store: StoreOptions
    @OptionGroup var server: ServerOptions
    @Flag(name: .customLong("read-only"), help: "Only serve the store: never write it, accept no pushes (so `hosttwin run` can start on it later).")
    var readOnly = false
    @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error.", valueName: "LEVEL")) var logLevel: String = "info"

    func run() async throws {
        var logger = Logger(label: "hosttwin")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        // A hub when the store is free to write (agents push into it); a reader beside `run` otherwise.
        var hub: HubReceiver?
        let twinStore: TwinStore
        do {
            if readOnly { throw TwinError.unavailable("another HostTwin writer: --read-only") }
            let writable = try TwinStore.open(dataDir: store.resolvedDataDir)
            let writer = TwinWriter(store: writable, report: { [logger] in logger.warning("\($0)") })
            try writer.open()
            hub = try HubReceiver(writer: writer)
            twinStore = writable
        } catch let TwinError.unavailable(why) where why.contains("another HostTwin writer") {
            if !readOnly { logger.notice("\(why.prefix(120)): serving it read-only, without accepting pushes") }
            twinStore = try store.openForReading()
        }
        var api = TwinAPI(store: twinStore, live: nil, metrics: SelfMetrics.bootstrap(), logger: logger)
        api.sync = hub
        let setup = try server.prepare(&api, dataDir: twinStore.dataDir, logger: logger)
        let log = logger, isHub = hub != nil
        let app = try TwinHTTPServer.application(api: api, host: setup.host, port: setup.port, tls: setup.tls, logger: logger) { actualPort in
            log.info("serving \(twinStore.dataDir) on \(setup.url):\(actualPort)/\(!isHub ? "" : "; accepting pushes from agents (/api/v1/sync/push)")")
        }
        let group = ServiceGroup(configuration: .init(services: [.init(service: app), .init(service: AuditAnchorService(audit: setup.audit))],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        try hub?.finish()
    }
}
