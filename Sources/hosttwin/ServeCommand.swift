import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import TwinCore
import TwinQuery
import TwinServer
import TwinStorage

/// `hosttwin serve`: the HTTP API over an existing store, without observing this host.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a store's API (Prometheus-compatible query API, state API) without collecting.",
        discussion: "Reads the store read-only; `hosttwin run` may be writing it at the same time, or it may be an imported store."
    )

    @OptionGroup var store: StoreOptions
    @OptionGroup var server: ServerOptions
    @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error.", valueName: "LEVEL")) var logLevel: String = "info"

    func run() async throws {
        var logger = Logger(label: "hosttwin")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let twinStore = try store.openForReading()
        var api = TwinAPI(store: twinStore, live: nil, metrics: SelfMetrics.bootstrap(), logger: logger)
        let setup = try server.prepare(&api, dataDir: twinStore.dataDir, logger: logger)
        let log = logger
        let app = try TwinHTTPServer.application(api: api, host: setup.host, port: setup.port, tls: setup.tls, logger: logger) { actualPort in
            log.info("serving \(twinStore.dataDir) on \(setup.url):\(actualPort)/")
        }
        let group = ServiceGroup(configuration: .init(services: [.init(service: app), .init(service: AuditAnchorService(audit: setup.audit))],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
