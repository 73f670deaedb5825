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
          hosttwin query up --url https://twin.example.org:9977 --ca ca.pem --token-file reader.token
        """
    )

    @Argument(help: ArgumentHelp("A PromQL expression.", valueName: "EXPR")) var expr: String
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @Option(parsing: .unconditional, help: ArgumentHelp("Evaluation time of an instant query.", valueName: "TIME")) var at: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("Start of a range query.", valueName: "TIME")) var start: String?
    @Option(parsing: .unconditional, help: ArgumentHelp("End of a range query (default now).", valueName: "TIME")) var end: String?
    @Option(help: ArgumentHelp("Step of a range query, e.g. 15s, 1m.", valueName: "DURATION")) var step: String?
    @OptionGroup var remote: RemoteOptions

    func run() throws {
        let parsed: Expr
        do { parsed = try PromQLParser.parse(expr) } catch {
            throw CLIError("\(error)\n  \(expr)\n  \(String(repeating: " ", count: Self.column(error, in: expr)))^")
        }
        var range: (Int64, Int64, Int64)?
        if start != nil || end != nil || step != nil {
            guard at == nil else { throw CLIError("--at is for instant queries; a range query takes --start, --end and --step") }
            let b = try parseTime(end ?? "now", "--end")
            let a = try parseTime(start ?? "-1h", "--start")
            let s = try step.map { text in
                do { return try TwinTime.parseDuration(text) } catch { throw CLIError("--step: \(error)") }
            } ?? max(1000, (b - a) / 250 / 1000 * 1000)
            range = (a, b, s)
        }
        let t = try parseTime(at ?? "now", "--at")
        if let client = try remote.client() {
            let q = "query=" + (expr.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
            let path = range.map { "/api/v1/query_range?\(q)&start=\(Double($0.0) / 1000)&end=\(Double($0.1) / 1000)&step=\(Double($0.2) / 1000)" }
                ?? "/api/v1/query?\(q)&time=\(Double(t) / 1000)"
            let body = try RemoteOptions.fetch(client, path)
            guard !output.json else {
                let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
                print(String(decoding: try JSONSerialization.data(withJSONObject: object?["data"] ?? [:], options: [.sortedKeys]), as: UTF8.self))
                return
            }
            return try show(Self.decode(body))
        }
        let engine = PromQLEngine(source: StoreSampleSource(store: try store.openForReading()))
        let result: QueryResult
        do {
            if let (a, b, s) = range { result = try engine.range(parsed, start: a, end: b, step: s) } else { result = try engine.instant(parsed, at: t) }
        } catch let e as PromQLError { throw CLIError("\(e)") }
        if output.json { print(PrometheusJSON.data(result)); return }
        show(result)
    }

    /// A Prometheus API answer (`{"status":"success","data":{...}}`) as a result.
    static func decode(_ body: Data) throws -> QueryResult {
        struct Answer: Decodable {
            struct DataPart: Decodable { var resultType: String; var result: ResultValue }
            var data: DataPart
        }
        enum ResultValue: Decodable {
            case point([JSONValue]), series([Series])
            init(from decoder: any Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let s = try? c.decode([Series].self) { self = .series(s) } else { self = .point(try c.decode([JSONValue].self)) }
            }
        }
        struct Series: Decodable { var metric: [String: String]; var value: [JSONValue]?; var values: [[JSONValue]]? }
        enum JSONValue: Decodable {
            case number(Double), text(String)
            init(from decoder: any Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let d = try? c.decode(Double.self) { self = .number(d) } else { self = .text(try c.decode(String.self)) }
            }
            var double: Double { switch self { case .number(let d): return d; case .text(let s): return Double(s) ?? .nan } }
            var millis: Int64 { Int64(saturating: (double * 1000).rounded()) }
            var string: String { switch self { case .number(let d): return PromNumber.format(d); case .text(let s): return s } }
        }
        let answer: Answer
        do { answer = try JSONDecoder().decode(Answer.self, from: body) } catch { throw CLIError("the server's answer is not a Prometheus API result: \(error)") }
        switch (answer.data.resultType, answer.data.result) {
        case ("scalar", .point(let p)) where p.count == 2: return .scalar(t: p[0].millis, value: p[1].double)
        case ("string", .point(let p)) where p.count == 2: return .string(t: p[0].millis, value: p[1].string)
        case ("vector", .series(let s)):
            return .vector(t: s.first?.value?.first?.millis ?? 0, s.map { (Labels(dictionary: $0.metric), $0.value.map { $0.count == 2 ? $0[1].double : .nan } ?? .nan) })
        case ("vector", .point(let p)) where p.isEmpty: return .vector(t: 0, [])
        case ("matrix", .series(let s)):
            return .matrix(s.map { (labels: Labels(dictionary: $0.metric), points: ($0.values ?? []).compactMap { $0.count == 2 ? ($0[0].millis, $0[1].double) : nil }) })
        case ("matrix", .point(let p)) where p.isEmpty: return .matrix([])
        default: throw CLIError("the server's answer has an unknown result type \(answer.data.resultType)")
        }
    }

    func show(_ result: QueryResult) {
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
