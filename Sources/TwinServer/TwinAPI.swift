import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import TwinCore
import TwinDashboard
import TwinQuery
import TwinStorage

/// The HTTP API of a twin: the Prometheus-compatible query API, the state API, the live stream and
/// `/metrics`. One responder dispatches on method and path, so unknown routes and wrong methods get
/// the API's JSON errors (404, 405) rather than empty bodies.
public struct TwinAPI: Sendable {
    public let store: TwinStore
    public let live: LiveTwin?
    let metrics: SelfMetrics
    let requestMetrics = RequestMetrics()
    let source: StoreSampleSource
    public var engine: PromQLEngine
    /// The largest request body accepted (form POSTs), in bytes.
    public var maxBodyBytes = 1 << 20
    /// Limits of `/api/v1/twin/sql`.
    public var sqlLimits = StateSQL.Limits()
    /// The `Host` headers answered (DNS rebinding); loopback names only until the server says otherwise.
    public var hostCheck = HostCheck(listenHost: "127.0.0.1")
    let logger: Logger

    public init(store: TwinStore, live: LiveTwin?, metrics: SelfMetrics, logger: Logger) {
        self.store = store
        self.live = live
        self.metrics = metrics
        self.logger = logger
        source = StoreSampleSource(store: store)
        engine = PromQLEngine(source: source)
    }

    enum Method { case get, getOrPost }
    /// A route's handler. Handlers block (SQLite reads, evaluation); ``answer`` runs them off the
    /// cooperative thread pool, so slow queries never stall the server's other requests.
    typealias Handler = @Sendable (TwinAPI, Params) throws -> Response

    /// Fixed routes: path → (allowed methods, handler).
    private static let routes: [String: (Method, Handler)] = [
        "/api/v1/query": (.getOrPost, { try $0.query($1) }),
        "/api/v1/query_range": (.getOrPost, { try $0.queryRange($1) }),
        "/api/v1/series": (.getOrPost, { try $0.series($1) }),
        "/api/v1/labels": (.getOrPost, { try $0.labels($1) }),
        "/api/v1/metadata": (.get, { try $0.metadata($1) }),
        "/api/v1/status/buildinfo": (.get, { api, _ in api.buildInfo() }),
        // Asked by Grafana's data source; rules and alerts come with the alerting issue, exemplars are not kept.
        "/api/v1/rules": (.get, { _, _ in TwinAPI.success { $0.raw(#"{"groups":[]}"#) } }),
        "/api/v1/alerts": (.get, { _, _ in TwinAPI.success { $0.raw(#"{"alerts":[]}"#) } }),
        "/api/v1/query_exemplars": (.getOrPost, { _, _ in TwinAPI.success { $0.raw("[]") } }),
        "/api/v1/twin/state": (.get, { try $0.state($1, kinds: nil) }),
        "/api/v1/twin/diff": (.get, { try $0.diff($1) }),
        "/api/v1/twin/events": (.get, { try $0.events($1) }),
        "/api/v1/twin/sql": (.getOrPost, { try $0.sql($1) }),
        "/api/v1/twin/forecast": (.get, { try $0.forecast($1) }),
        "/api/v1/twin/anomalies": (.get, { try $0.anomalies($1) }),
        "/api/v1/twin/live": (.get, { api, _ in try api.liveStream() }),
        "/api/v1/summary": (.get, { api, _ in try api.summary() }),
        "/healthz": (.get, { api, _ in try api.health() }),
        "/metrics": (.get, { api, p in api.exposition(p) }),
    ]

    /// Answers one request; never throws (every failure is an API error response).
    public func respond(to request: Request) async -> Response {
        let started = DispatchTime.now().uptimeNanoseconds
        var routeName = "other"
        var response = await answer(request, routeName: &routeName)
        if Gzip.accepted(request.headers[.acceptEncoding]) { response = await Gzip.encode(response) }
        requestMetrics.record(route: routeName, status: response.status.code, nanos: DispatchTime.now().uptimeNanoseconds - started)
        return response
    }

    private func answer(_ request: Request, routeName: inout String) async -> Response {
        var request = request
        let path = request.uri.path
        guard hostCheck.allows(request.head.authority) else {
            routeName = "refused"
            let e = APIError(type: "forbidden", message: "Host \"\(request.head.authority ?? "")\" is not a name of this server (DNS rebinding protection); if it is, start the server with --allowed-host NAME", status: .forbidden)
            return Self.json(e.json, status: e.status)
        }
        if request.method == .get || request.method == .head, let asset = Dashboard.asset(at: path) {
            routeName = "dashboard"
            return Self.dashboard(asset, ifNoneMatch: request.headers[.ifNoneMatch])
        }
        do {
            let (name, allowed, handler) = try route(path)
            routeName = name
            let isPost = request.method == .post
            guard request.method == .get || request.method == .head || (isPost && allowed == .getOrPost) else {
                var e = APIError(type: "bad_data", message: "method \(request.method.rawValue) not allowed on \(path); use \(allowed == .get ? "GET" : "GET or POST")", status: .methodNotAllowed)
                e.headers[.allow] = allowed == .get ? "GET, HEAD" : "GET, HEAD, POST"
                throw e
            }
            var params = Params(query: request.uri.query)
            params.accept = request.headers[.accept] ?? ""
            if isPost {
                let body: ByteBuffer
                do { body = try await request.collectBody(upTo: maxBodyBytes) } catch {
                    throw APIError(type: "bad_data", message: "request body larger than \(maxBodyBytes) bytes", status: .contentTooLarge)
                }
                let type = request.headers[.contentType] ?? ""
                if body.readableBytes > 0 {
                    guard type.lowercased().hasPrefix("application/x-www-form-urlencoded") else {
                        throw APIError(type: "bad_data", message: "POST bodies must be application/x-www-form-urlencoded (got \(type.isEmpty ? "no content type" : type))", status: .unsupportedMediaType)
                    }
                    params.add(form: String(buffer: body))
                }
            }
            let api = self
            let ready = params
            return try await withCheckedThrowingContinuation { done in
                DispatchQueue.global().async { done.resume(with: Result { try handler(api, ready) }) }
            }
        } catch {
            let e = APIError.from(error)
            if e.status == .internalServerError { logger.error("\(request.method.rawValue) \(path): \(e.message)") }
            return Self.json(e.json, status: e.status, headers: e.headers)
        }
    }

    /// The handler of `path`, with the route's name for metrics (parameters in place of values).
    private func route(_ path: String) throws -> (String, Method, Handler) {
        if let r = Self.routes[path] { return (path, r.0, r.1) }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        // /api/v1/label/<name>/values
        if parts.count == 6, parts[1] == "api", parts[2] == "v1", parts[3] == "label", parts[5] == "values" {
            let name = String(parts[4]).removingPercentEncoding ?? String(parts[4])
            return ("/api/v1/label/:name/values", .get, { try $0.labelValues(name, $1) })
        }
        // /api/v1/twin/entities/<kind>
        if parts.count == 6, parts[1] == "api", parts[2] == "v1", parts[3] == "twin", parts[4] == "entities" {
            guard let kind = EntityKind(rawValue: String(parts[5])) else {
                throw APIError.notFound("unknown entity kind \"\(parts[5])\"; kinds: \(EntityKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return ("/api/v1/twin/entities/:kind", .get, { try $0.state($1, kinds: [kind]) })
        }
        throw APIError.notFound("no such endpoint: \(path)")
    }

    // MARK: Responses

    /// A dashboard file. The page may only load its own files and call this server (no third-party
    /// origin, no inline script), revalidated by ETag on every load so an upgrade shows at once.
    static func dashboard(_ asset: Dashboard.Asset, ifNoneMatch: String?) -> Response {
        var h: HTTPFields = [
            .contentType: asset.contentType, .eTag: asset.etag, .cacheControl: "no-cache",
            .contentSecurityPolicy: "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            .xContentTypeOptions: "nosniff", HTTPField.Name("Referrer-Policy")!: "no-referrer",
        ]
        if ifNoneMatch == asset.etag { return Response(status: .notModified, headers: h) }
        h[.contentLength] = String(asset.bytes.count)
        return Response(status: .ok, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(bytes: asset.bytes)))
    }

    static func json(_ body: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        json(bytes: Array(body.utf8), status: status, headers: headers)
    }

    static func json(bytes: [UInt8], status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var h = headers
        h[.contentType] = "application/json"
        return Response(status: status, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// `{"status":"success","data":<data>}`.
    static func success(_ data: (inout JSONText) -> Void) -> Response {
        var j = JSONText(capacity: 4096)
        j.raw("{\"status\":\"success\",\"data\":")
        data(&j)
        j.raw("}")
        return json(bytes: j.bytes)
    }
}
