import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import TwinCore
import TwinQuery
import TwinServer
import TwinStorage

/// `hosttwin query`: PromQL from the command line, on the same engine as `/api/v1/query`.
struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Evaluate a PromQL expression over the stored series.",
        discussion: """
        With --at (default now): an instant query. With --start/--end/--step: a range query (step defaults to a \
        value giving about 250 points). --json prints the `data` member of the Prometheus API's answer.

        Examples:
          hosttwin query 'rate(node_cpu_seconds_total{mode!="idle"}[1m])'
          hosttwin query 'node_memory_MemAvailable_bytes' --start -1h --step 1m
        """
    )

    @Argument(help: ArgumentHelp("A PromQL expression.", valueName: "EXPR")) var expr: String
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @Option(parsing: .unconditional, help: ArgumentHelp("Evaluation time of an instant query.", valueName: "TIME")) var at: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Start of a range query.", valueName: "TIME")) var start: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("End of a range query (default now).", valueName: "TIME")) var end: String?
    @Option(help: ArgumentHelp("Step of a range query, e.g. 15s, 1m.", valueName: "DURATION")) var step: String?

    func run() throws {
        let parsed: Expr
        do { parsed = try PromQLParser.parse(expr) } catch {
            throw CLIError("\(error)\n  \(expr)\n  \(String(repeating: " ", count: Self.column(error, in: expr)))^")
        }
        let engine = PromQLEngine(source: StoreSampleSource(store: try store.openForReading()))
        let result: QueryResult
        do {
            if start != nil || end != nil || step != nil {
                guard at == nil else { throw CLIError("--at is for instant queries; a range query takes --start, --end and --step") }
                let b = try parseTime(end ?? "now", "--end")
                let a = try parseTime(start ?? "-1h", "--start")
                let s = try step.map { try TwinTime.parseDuration($0) } ?? max(1000, (b - a) / 250 / 1000 * 1000)
                result = try engine.range(parsed, start: a, end: b, step: s)
            } else {
                result = try engine.instant(parsed, at: try parseTime(at ?? "now", "--at"))
            }
        } catch let e as PromQLError { throw CLIError("\(e)") }
        if output.json { print(PrometheusJSON.data(result)); return }
        switch result {
        case .scalar(let t, let v): print("scalar \(PromNumber.format(v)) @ \(TwinTime.rfc3339(t))")
        case .string(let t, let s): print("string \"\(s)\" @ \(TwinTime.rfc3339(t))")
        case .vector(_, let samples):
            printTable(["SERIES", "VALUE"], samples.sorted { Labels.promLess($0.labels, $1.labels) }.map { [Self.name($0.labels), PromNumber.format($0.value)] })
        case .matrix(let series):
            for s in series {
                let values = s.points.map(\.1)
                print("\(Self.name(s.labels))  \(s.points.count) points  last \(values.last.map(PromNumber.format) ?? "-")  min \(values.min().map(PromNumber.format) ?? "-")  max \(values.max().map(PromNumber.format) ?? "-")")
                for p in s.points.suffix(output.json ? 0 : 5) { print("  \(TwinTime.rfc3339(p.0))  \(PromNumber.format(p.1))") }
            }
            if series.isEmpty { print("(no series)") }
        }
    }

    static func name(_ l: Labels) -> String {
        let metric = l[Labels.metricName] ?? ""
        let rest = Labels(l.pairs.filter { $0.name != Labels.metricName })
        return metric + (rest.isEmpty && !metric.isEmpty ? "" : rest.text.isEmpty ? "{}" : rest.text)
    }

    /// The column (0-based, in characters) a parse error points at.
    static func column(_ error: any Error, in text: String) -> Int {
        guard case PromQLError.parse(let offset, _) = error else { return 0 }
        return String(decoding: text.utf8.prefix(offset), as: UTF8.self).count
    }
}

/// `hosttwin sql`: read-only SQL over the state views as of a time.
struct SQLCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sql",
        abstract: "Read-only SQL over the host's state as of a time.",
        discussion: """
        Views: \(StateSQL.viewNames.joined(separator: ", ")). Each has `key`, the kind's attributes as columns, and \
        `valid_from`/`valid_to` (RFC 3339). Only SELECT is allowed; a query may run 2 s and return 10,000 rows.

        Example:
          hosttwin sql "select name, user, rss_bytes from processes order by rss_bytes desc limit 5" --at -2h
        """
    )

    @Argument(help: ArgumentHelp("One SELECT statement.", valueName: "SQL")) var query: String
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @Option(parsing: .unconditional, help: ArgumentHelp("The time the views show.", valueName: "TIME")) var at: String = "now"

    func run() throws {
        let t = try parseTime(at, "--at")
        let result: StateSQL.Result
        do { result = try StateSQL(store: try store.openForReading()).run(query, at: t) } catch let e as StateSQL.Refusal { throw CLIError(e.message) }
        if output.json {
            struct Body: Encodable { var at: String; var columns: [String]; var rows: [[AttributeValue]] }
            try printJSON(Body(at: TwinTime.rfc3339(t), columns: result.columns, rows: result.rows))
            return
        }
        printTable(result.columns.map { $0.uppercased() }, result.rows.map { $0.map(\.description) })
    }
}

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
        let (host, port) = try server.address()
        var logger = Logger(label: "hosttwin")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let twinStore = try store.openForReading()
        var api = TwinAPI(store: twinStore, live: nil, metrics: SelfMetrics.bootstrap(), logger: logger)
        server.configure(&api, listenHost: host)
        let log = logger
        let app = TwinHTTPServer.application(api: api, host: host, port: port, logger: logger) { actualPort in
            log.info("serving \(twinStore.dataDir) on http://\(host.contains(":") ? "[\(host)]" : host):\(actualPort)/")
        }
        let group = ServiceGroup(configuration: .init(services: [.init(service: app)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
