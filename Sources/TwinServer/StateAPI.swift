import Foundation
import HTTPTypes
import Hummingbird
import TwinAnalytics
import TwinCore
import TwinQuery
import TwinStorage

/// The state API: the host as of any time, what changed, events, and read-only SQL over the state.
/// Times take the CLI's forms: RFC 3339, Unix seconds, `now`, `-2h`.
extension TwinAPI {
    func time(_ p: Params, _ name: String, default def: String) throws -> Int64 {
        let text = p[name] ?? def
        do { return try TwinTime.parse(text.isEmpty ? def : text) } catch {
            throw APIError.badData("invalid parameter \"\(name)\": \(error)")
        }
    }

    private static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    /// `{"status":"success","data":<value as JSON, keys sorted>}`.
    func success<T: Encodable>(_ value: T) throws -> Response {
        let data = String(decoding: try Self.encoder.encode(value), as: UTF8.self)
        return Self.success { $0.raw(data) }
    }

    /// `GET /api/v1/twin/state?at=T` and `/api/v1/twin/entities/<kind>?at=T`.
    func state(_ p: Params, kinds: [EntityKind]?) throws -> Response {
        let at = try time(p, "at", default: "now")
        let versions = present(try store.state(at: at, kinds: kinds), to: p.identity)
        struct Body: Encodable { var at: String; var entities: [EntityVersion] }
        return try success(Body(at: TwinTime.rfc3339(at), entities: versions))
    }

    /// `GET /api/v1/twin/diff?from=T&to=T&limit=N` (`limit`: at most N of each kind in each list).
    func diff(_ p: Params) throws -> Response {
        let a = try time(p, "from", default: "-1h"), b = try time(p, "to", default: "now")
        let limit = try p["limit"].map { v -> Int in
            guard let n = Int(v), n > 0 else { throw APIError.badData("invalid parameter \"limit\": a positive number of entries of each kind") }
            return n
        } ?? .max
        return try success(StateDiffJSON(present(try store.diff(from: a, to: b), to: p.identity), limitPerKind: limit))
    }

    /// `GET /api/v1/twin/events?from=T&to=T&limit=N`.
    func events(_ p: Params) throws -> Response {
        let a = try time(p, "from", default: "-1h"), b = try time(p, "to", default: "now")
        guard a <= b else { throw APIError.badData("invalid parameter \"from\": must not be after \"to\"") }
        let limit = p["limit"].flatMap { Int($0) } ?? 10_000
        guard limit > 0, limit <= 100_000 else { throw APIError.badData("invalid parameter \"limit\": must be 1-100000") }
        return try success(present(try store.events(from: a, to: b, limit: limit), to: p.identity).map(TwinEventJSON.init))
    }

    /// `GET|POST /api/v1/twin/sql?query=...&at=T`: `{"columns":[...],"rows":[[...],...]}` (not wrapped in
    /// the Prometheus envelope on success, so the rows are the body).
    func sql(_ p: Params) throws -> Response {
        guard let q = p["query"], !q.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw APIError.badData("missing parameter \"query\": a SELECT over \(StateSQL.viewNames.joined(separator: ", "))")
        }
        let at = try time(p, "at", default: "now")
        let result: StateSQL.Result
        var query = StateSQL(store: store, limits: sqlLimits)
        let (api, identity) = (self, p.identity)
        if !sees(identity) { query.present = { api.present($0, to: identity) } }
        do { result = try query.run(q, at: at) } catch let e as StateSQL.Refusal {
            let status: HTTPResponse.Status
            switch e.type {
            case "timeout": status = .serviceUnavailable
            case "execution": status = .unprocessableContent
            case "forbidden": status = .forbidden
            case "internal": status = .internalServerError
            default: status = .badRequest
            }
            throw APIError(type: e.type, message: e.message, status: status)
        }
        var j = JSONText(capacity: 1024)
        j.raw("{\"at\":")
        j.string(TwinTime.rfc3339(at))
        j.raw(",\"columns\":")
        j.array(result.columns) { j, c in j.string(c) }
        j.raw(",\"rows\":")
        j.array(result.rows) { j, row in j.array(row) { j, v in j.attribute(v) } }
        j.raw("}")
        return Self.json(bytes: j.bytes)
    }

    /// `GET /api/v1/summary`: host facts, the summary of the latest tick and the stored span (bare JSON).
    /// On `serve` (no host observed) the facts are the stored host entity's and there is no `summary`.
    func summary(_ p: Params) throws -> Response {
        var host: [String: AttributeValue], s: HostSummary?
        if let live {
            guard let latest = live.summary() else { throw APIError.unavailable("no observation yet; the first tick is under way") }
            (host, s) = (sees(p.identity) ? live.host : dataPolicy.redactedForReaders(.host, live.host), latest)
        } else {
            (host, s) = (present(try store.state(at: TwinTime.nowMillis(), kinds: [.host]), to: p.identity).first?.attributes ?? [:], nil)
        }
        let stored = try store.sampleTimeRange().map { SummaryResponse.Stored(from: TwinTime.rfc3339($0.0), to: TwinTime.rfc3339($0.1)) }
        return Self.json(String(decoding: try Self.encoder.encode(SummaryResponse(host: host, summary: s, stored: stored, live: live != nil)), as: UTF8.self))
    }

    /// `GET /healthz`: whether ticks are being committed, and each collector's health.
    func health() throws -> Response {
        guard let live else {
            return Self.json(#"{"status":"ok","mode":"serve"}"#)
        }
        let last = live.lastTick
        let body = HealthResponse(status: last == nil ? "starting" : "ok", lastTick: last.map(TwinTime.rfc3339), ticks: live.ticks,
                                  uptimeSeconds: Double(TwinTime.nowMillis() - live.startedAt) / 1000, collectors: live.health)
        return Self.json(String(decoding: try Self.encoder.encode(body), as: UTF8.self))
    }
}

/// `/healthz`: whether ticks are being committed, and each collector's health.
struct HealthResponse: Encodable {
    var status: String
    var lastTick: String?
    var ticks: Int64
    var uptimeSeconds: Double
    var collectors: [CollectorHealth]
    enum CodingKeys: String, CodingKey { case status, lastTick = "last_tick", ticks, uptimeSeconds = "uptime_seconds", collectors }
}

/// `/api/v1/summary`: host facts and the one-screen summary of now.
struct SummaryResponse: Encodable {
    /// The oldest and newest stored sample.
    struct Stored: Encodable { var from: String; var to: String }
    var host: [String: AttributeValue]
    var summary: HostSummary?
    var stored: Stored?
    /// Whether this server observes the host now (`run`) and has a live stream.
    var live: Bool
}

extension TwinAPI {
    /// `GET /api/v1/twin/forecast?query=EXPR&horizon=24h&history=7d&below=X`: each series of the expression
    /// forecast ahead with 80/95 % intervals, and when it reaches `below` if given.
    func forecast(_ p: Params) throws -> Response {
        let expr: Expr
        do { expr = try PromQLParser.parse(p["query"] ?? "") } catch { throw APIError.from(error, parameter: "query") }
        let horizon = try p.duration("horizon") ?? 86_400_000, history = try p.duration("history") ?? 7 * 86_400_000
        guard horizon > 0, horizon <= 366 * 86_400_000, history > 0, history <= 366 * 86_400_000 else {
            throw APIError.badData("horizon and history must be between 1 ms and a year")
        }
        var below: Double?
        if let b = p["below"] { guard let v = Double(b), v.isFinite else { throw APIError.badData("invalid parameter \"below\": not a number") }; below = v }
        let forecasts = try QueryForecaster.forecast(engine: engine, expr: expr, now: TwinTime.nowMillis(), history: history, horizon: horizon, exhaustionBelow: below)
        return try success(forecasts.map(SeriesForecastJSON.init))
    }
}

extension TwinAPI {
    /// `GET /api/v1/twin/anomalies?since=-6h&to=now&history=24h`: the JSON of `hosttwin anomalies --json`.
    func anomalies(_ p: Params) throws -> Response {
        let a = try time(p, "since", default: "-6h"), b = try time(p, "to", default: "now")
        guard a < b, b - a <= 31 * 86_400_000 else { throw APIError.badData("invalid window: \"since\" must be before \"to\", at most 31 days apart") }
        let history = try p.duration("history") ?? 86_400_000
        guard history >= 0, history <= 31 * 86_400_000 else { throw APIError.badData("invalid parameter \"history\": 0 to 31 days") }
        let report = try AnomalyScan.run(store: store, to: b, window: b - a, history: history, deadline: TwinTime.nowMillis() + engine.timeout)
        return try success(report)
    }
}
