import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import TwinCore
import TwinDashboard
import TwinQuery
import TwinRules
import TwinSecurity
import TwinStorage

/// The HTTP API of a twin: the Prometheus-compatible query API, the state API, the live stream,
/// `/metrics`, the admin API and the dashboard. One responder dispatches on method and path, so unknown
/// routes and wrong methods get the API's JSON errors (404, 405) rather than empty bodies.
///
/// Every request passes, in order: the `Host` check (DNS rebinding), the route's declared ``Access``
/// against the caller's identity (token or anonymous role: 401, 403, 429 after repeated bad tokens),
/// the caller's concurrency limit (429), the handler, and the audit log.
public struct TwinAPI: Sendable {
    public let store: TwinStore
    public let live: LiveTwin?
    let metrics: SelfMetrics
    let requestMetrics = RequestMetrics()
    let source: StoreSampleSource
    public var engine: PromQLEngine
    /// What a query may use on the request's own task before it is handed to a worker thread.
    public var smallQueryBudget = SmallQueryBudget()
    /// The largest request body accepted (form POSTs), in bytes.
    public var maxBodyBytes = 1 << 20
    /// Limits of `/api/v1/twin/sql`.
    public var sqlLimits = StateSQL.Limits()
    /// The `Host` headers answered (DNS rebinding); loopback names only until the server says otherwise.
    public var hostCheck = HostCheck(listenHost: "127.0.0.1")
    /// Tokens, the anonymous role and per-caller limits.
    public var access: AccessControl
    /// Where every request and admin action is recorded; nil in tests that do not look.
    public var audit: AuditLog?
    /// The classes of attributes: what non-admins see masked.
    public var dataPolicy = DataPolicy()
    /// The rules this server evaluates (`/api/v1/rules`, `/api/v1/alerts`, `POST /-/reload`); their recorded
    /// series are queryable. Nil: none (alerts as of a time still come from the store).
    public var rules: RuleRunner?
    /// Where pushed batches go (a hub); nil on a server that does not accept pushes.
    public var sync: (any SyncReceiver)?
    /// Where Prometheus remote_write requests go (a hub); nil on a server that accepts none.
    public var remoteWriteReceiver: (any RemoteWriteReceiver)?
    /// Actions dispatched to agents (a hub); nil on a server that dispatches none.
    public var agentActions: AgentActionQueue?
    let polls = CallerLimits()
    let callers = CallerLimits()
    let streams = CallerLimits()
    let pushes = CallerLimits()
    let logger: Logger

    public init(store: TwinStore, live: LiveTwin?, metrics: SelfMetrics, logger: Logger) {
        self.store = store
        self.live = live
        self.metrics = metrics
        self.logger = logger
        source = StoreSampleSource(store: store, scrapeLabels: ScrapeLabels())
        engine = PromQLEngine(source: source)
        access = AccessControl(tokens: TokenAuthority(store: store))
    }

    enum Method: String { case get = "GET", getOrPost = "GET or POST", post = "POST" }
    /// A route's handler. Handlers block (SQLite reads, evaluation); ``answer`` runs them off the
    /// cooperative thread pool, so slow queries never stall the server's other requests (PromQL queries
    /// within ``smallQueryBudget`` excepted).
    typealias Handler = @Sendable (TwinAPI, Params) throws -> Response

    /// One route: the methods it takes, what it needs from the caller, and its handler. `light` routes
    /// answer from memory at once and skip the per-caller limit (health checks stay fast under load).
    /// `small` routes (PromQL queries) are first tried on the request's own task under
    /// ``smallQueryBudget``; only a query that outgrows it goes to a worker thread.
    struct Route {
        var methods: Method
        var access: Access
        var light = false
        var small = false
        var handler: Handler
    }

    /// The budget of a query's first attempt on the request's task: most dashboard queries fit, and
    /// skipping the hand-over to a worker thread and back saves two thread wake-ups per query. One that
    /// needs more samples or time stops early (the sample bound is known from the chunk directories
    /// before anything is decoded) and runs again on a worker under the full limits.
    public struct SmallQueryBudget: Sendable {
        public var maxSamples = 200_000
        public var timeoutMillis: Int64 = 25
        public init() {}
    }

    /// Fixed routes by path.
    private static let routes: [String: Route] = [
        "/api/v1/query": Route(methods: .getOrPost, access: .read, small: true) { try $0.query($1) },
        "/api/v1/query_range": Route(methods: .getOrPost, access: .read, small: true) { try $0.queryRange($1) },
        "/api/v1/series": Route(methods: .getOrPost, access: .read) { try $0.series($1) },
        "/api/v1/labels": Route(methods: .getOrPost, access: .read) { try $0.labels($1) },
        "/api/v1/metadata": Route(methods: .get, access: .read) { try $0.metadata($1) },
        "/api/v1/status/buildinfo": Route(methods: .get, access: .read, light: true) { api, _ in api.buildInfo() },
        "/api/v1/rules": Route(methods: .get, access: .read) { try $0.ruleGroups($1) },
        "/api/v1/alerts": Route(methods: .get, access: .read) { try $0.alerts($1) },
        "/-/reload": Route(methods: .post, access: .admin) { try $0.reloadRules($1) },
        "/api/v1/twin/actions": Route(methods: .get, access: .read) { try $0.actionRuns($1) },
        "/api/v1/twin/timeline": Route(methods: .get, access: .read) { try $0.timeline($1) },
        "/api/v1/silences": Route(methods: .getOrPost, access: .read) { try $0.silences($1) },
        "/api/v1/silences/expire": Route(methods: .post, access: .admin) { try $0.expireSilence($1) },
        "/api/v1/actions/dispatch": Route(methods: .post, access: .admin) { try $0.dispatchAction($1) },
        "/api/v1/agent/actions/result": Route(methods: .post, access: .agent) { try $0.agentActionResult($1) },
        // A long poll: answered by `agentActionPoll` on the request's task (the handler is never called).
        "/api/v1/agent/actions": Route(methods: .get, access: .agent, light: true) { _, _ in throw APIError.unavailable("an action poll waits") },
        // Asked by Grafana's data source; exemplars are not kept.
        "/api/v1/query_exemplars": Route(methods: .getOrPost, access: .read, light: true) { _, _ in TwinAPI.success { $0.raw("[]") } },
        "/api/v1/format_query": Route(methods: .getOrPost, access: .read, light: true) { try $0.formatQuery($1) },
        // Prometheus' status pages, answered for a twin: what it holds, how it runs; no scrape targets or
        // Alertmanagers of its own (an agent pushes), so those lists are empty.
        "/api/v1/status/config": Route(methods: .get, access: .read, light: true) { api, _ in api.statusConfig() },
        "/api/v1/status/flags": Route(methods: .get, access: .read, light: true) { api, _ in api.statusFlags() },
        "/api/v1/status/runtimeinfo": Route(methods: .get, access: .read) { try $0.runtimeInfo($1) },
        "/api/v1/status/tsdb": Route(methods: .get, access: .read) { try $0.tsdbStatus($1) },
        "/api/v1/status/walreplay": Route(methods: .get, access: .read, light: true) { _, _ in TwinAPI.success { $0.raw(#"{"min":0,"max":0,"current":0}"#) } },
        "/api/v1/targets": Route(methods: .get, access: .read, light: true) { _, _ in TwinAPI.success { $0.raw(#"{"activeTargets":[],"droppedTargets":[]}"#) } },
        "/api/v1/targets/metadata": Route(methods: .get, access: .read, light: true) { _, _ in TwinAPI.success { $0.raw("[]") } },
        "/api/v1/alertmanagers": Route(methods: .get, access: .read, light: true) { _, _ in TwinAPI.success { $0.raw(#"{"activeAlertmanagers":[],"droppedAlertmanagers":[]}"#) } },
        "/api/v1/twin/state": Route(methods: .get, access: .read) { try $0.state($1, kinds: nil) },
        "/api/v1/twin/diff": Route(methods: .get, access: .read) { try $0.diff($1) },
        "/api/v1/twin/events": Route(methods: .get, access: .read) { try $0.events($1) },
        "/api/v1/twin/sql": Route(methods: .getOrPost, access: .read) { try $0.sql($1) },
        "/api/v1/twin/forecast": Route(methods: .get, access: .read) { try $0.forecast($1) },
        "/api/v1/twin/anomalies": Route(methods: .get, access: .read) { try $0.anomalies($1) },
        "/api/v1/twin/live": Route(methods: .get, access: .read, light: true) { try $0.liveStream($1) },
        "/api/v1/summary": Route(methods: .get, access: .read) { try $0.summary($1) },
        "/healthz": Route(methods: .get, access: .open, light: true) { api, _ in try api.health() },
        "/metrics": Route(methods: .get, access: .read) { api, p in api.exposition(p) },
        "/api/v1/admin/tokens": Route(methods: .getOrPost, access: .admin) { try $0.tokens($1) },
        "/api/v1/admin/tokens/revoke": Route(methods: .post, access: .admin) { try $0.revokeToken($1) },
        "/api/v1/admin/audit": Route(methods: .get, access: .admin) { try $0.auditRecords($1) },
        "/api/v1/admin/audit/verify": Route(methods: .get, access: .admin) { try $0.auditVerify($1) },
        "/api/v1/sync/cursor": Route(methods: .get, access: .write) { try $0.syncCursor($1) },
        "/api/v1/sync/reconcile": Route(methods: .post, access: .write) { try $0.syncReconcile($1) },
        "/api/v1/sync/rewind": Route(methods: .post, access: .write) { try $0.syncRewind($1) },
        "/api/v1/sync/cursors": Route(methods: .get, access: .relay) { try $0.syncCursors($1) },
        "/api/v1/sync/addresses": Route(methods: .get, access: .write) { try $0.syncAddresses($1) },
        "/api/v1/sync/follow": Route(methods: .post, access: .relay, light: true) { _, _ in throw APIError.unavailable("follow is a stream") },
        "/api/v1/fleet": Route(methods: .get, access: .read) { try $0.fleet($1) },
        "/api/v1/twin/graph": Route(methods: .get, access: .read) { try $0.graph($1) },
        // Streams: answered by `syncPush` before bodies are collected (the handler is never called).
        "/api/v1/sync/push": Route(methods: .post, access: .write, light: true) { _, _ in throw APIError.unavailable("push is a stream") },
        // Prometheus remote_write into a hub: a relay or admin token (a Prometheus writes many hosts).
        "/api/v1/write": Route(methods: .post, access: .relay, light: true) { _, _ in throw APIError.unavailable("remote_write reads its own body") },
    ]

    /// Every route the server answers, for documentation and the test that walks each with every role:
    /// the route's name, a path that reaches it, its methods and what it needs.
    public static var routeCatalog: [(name: String, path: String, methods: String, access: Access)] {
        routes.map { ($0.key, $0.key, $0.value.methods.rawValue, $0.value.access) }
            + [("/api/v1/label/:name/values", "/api/v1/label/__name__/values", Method.get.rawValue, dynamicRoutesAccess),
               ("/api/v1/twin/entities/:kind", "/api/v1/twin/entities/processes", Method.get.rawValue, dynamicRoutesAccess),
               ("/ (dashboard)", "/", Method.get.rawValue, Access.open)]
    }
    /// The routes a token confined to a datacenter may use: each answers for that datacenter's hosts only
    /// (docs/SECURITY.md). The rest — the live stream, `/metrics`, forecasts, anomaly scans, admin and sync
    /// routes — are refused to it.
    static let scopedRoutes: Set<String> = [
        "/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels", "/api/v1/label/:name/values", "/api/v1/metadata",
        "/api/v1/status/buildinfo", "/api/v1/rules", "/api/v1/alerts", "/api/v1/query_exemplars",
        "/api/v1/twin/state", "/api/v1/twin/entities/:kind", "/api/v1/twin/diff", "/api/v1/twin/events", "/api/v1/twin/sql",
        "/api/v1/summary", "/api/v1/fleet", "/api/v1/twin/graph", "/healthz",
    ]

    /// What the routes with a path parameter (label values, entities of a kind) need.
    private static let dynamicRoutesAccess = Access.read

    /// Answers one request from `source` (the peer's address); never throws (every failure is an API
    /// error response).
    public func respond(to request: Request, source: String = "unknown") async -> Response {
        let started = DispatchTime.now().uptimeNanoseconds
        var routeName = "other"
        var identity = Identity.nobody
        var response = await answer(request, source: source, routeName: &routeName, identity: &identity)
        if Gzip.accepted(request.headers[.acceptEncoding]) { response = await Gzip.encode(response) }
        requestMetrics.record(route: routeName, status: response.status.code, nanos: DispatchTime.now().uptimeNanoseconds - started)
        if routeName != "dashboard" {
            audit?.append(.init(kind: "request", action: "\(request.method.rawValue) \(routeName)", role: identity.role?.rawValue,
                                token: identity.tokenID, source: source, status: response.status.code))
        }
        return response
    }

    private func answer(_ request: Request, source: String, routeName: inout String, identity: inout Identity) async -> Response {
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
        var caller = ""
        do {
            let (name, route) = try self.route(path)
            routeName = name
            identity = try access.identify(request.headers[.authorization], source: source).get()
            if let refusal = AccessControl.refusal(identity, route.access, route: name) { throw refusal }
            if let dc = identity.datacenter {
                guard Self.scopedRoutes.contains(name) else {
                    throw APIError(type: "forbidden", message: "\(name) is not open to a token confined to datacenter \(dc)", status: .forbidden)
                }
                identity.scopedHosts = Set(try store.remoteCursors().filter { $0.datacenter == dc }.map(\.host))
            }
            let isPost = request.method == .post
            let methodOK: Bool
            switch route.methods {
            case .get: methodOK = request.method == .get || request.method == .head
            case .getOrPost: methodOK = request.method == .get || request.method == .head || isPost
            case .post: methodOK = isPost
            }
            guard methodOK else {
                var e = APIError(type: "bad_data", message: "method \(request.method.rawValue) not allowed on \(path); use \(route.methods.rawValue)", status: .methodNotAllowed)
                e.headers[.allow] = route.methods == .get ? "GET, HEAD" : route.methods == .post ? "POST" : "GET, HEAD, POST"
                throw e
            }
            var params = Params(query: request.uri.query)
            params.accept = request.headers[.accept] ?? ""
            params.identity = identity
            params.caller = identity.tokenID ?? source
            params.isPost = isPost
            if name == "/api/v1/sync/push" { return try syncPush(request, params) }
            if name == "/api/v1/agent/actions" { return try await agentActionPoll(params) }
            if name == "/api/v1/write" { return try await remoteWrite(request) }
            if isPost {
                let body: ByteBuffer
                do { body = try await request.collectBody(upTo: maxBodyBytes) } catch {
                    throw APIError(type: "bad_data", message: "request body larger than \(maxBodyBytes) bytes", status: .contentTooLarge)
                }
                let type = request.headers[.contentType] ?? ""
                if body.readableBytes > 0 {
                    guard type.asciiLowercased.hasPrefix("application/x-www-form-urlencoded") else {
                        throw APIError(type: "bad_data", message: "POST bodies must be application/x-www-form-urlencoded (got \(type.isEmpty ? "no content type" : type))", status: .unsupportedMediaType)
                    }
                    params.add(form: String(buffer: body))
                }
            }
            if name == "/api/v1/sync/follow" { return try syncFollow(request, params) }
            let api = self
            let ready = params
            if route.light { return try route.handler(api, ready) }
            guard callers.acquire(params.caller, limit: access.maxConcurrentPerCaller) else {
                throw APIError(type: "too_many_requests", message: "more than \(access.maxConcurrentPerCaller) requests of yours are running; wait for them", status: .tooManyRequests)
            }
            caller = params.caller
            defer { callers.release(caller) }
            if route.small {
                var first = ready
                first.smallAttempt = true
                do { return try route.handler(api, first) } catch let e as PromQLError where e.isOverBudget {}
            }
            return try await withCheckedThrowingContinuation { done in
                DispatchQueue.global().async { done.resume(with: Result { try route.handler(api, ready) }) }
            }
        } catch {
            let e = APIError.from(error)
            if e.status == .internalServerError { logger.error("\(request.method.rawValue) \(path): \(e.message)") }
            return Self.json(e.json, status: e.status, headers: e.headers)
        }
    }

    /// The route of `path`, with its name for metrics and the audit log (parameters in place of values).
    private func route(_ path: String) throws -> (String, Route) {
        if let r = Self.routes[path] { return (path, r) }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        // /api/v1/label/<name>/values
        if parts.count == 6, parts[1] == "api", parts[2] == "v1", parts[3] == "label", parts[5] == "values" {
            let name = String(parts[4]).removingPercentEncoding ?? String(parts[4])
            return ("/api/v1/label/:name/values", Route(methods: .get, access: Self.dynamicRoutesAccess) { try $0.labelValues(name, $1) })
        }
        // /api/v1/twin/entities/<kind>
        if parts.count == 6, parts[1] == "api", parts[2] == "v1", parts[3] == "twin", parts[4] == "entities" {
            guard let kind = EntityKind(rawValue: String(parts[5])) else {
                throw APIError.notFound("unknown entity kind \"\(parts[5])\"; kinds: \(EntityKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return ("/api/v1/twin/entities/:kind", Route(methods: .get, access: Self.dynamicRoutesAccess) { try $0.state($1, kinds: [kind]) })
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

extension TwinAPI {
    /// Answers `GET pathAndQuery` as a loopback client without a token would, in process: the status and
    /// the body as text (tests, and tools that want the API without a socket).
    func get(_ pathAndQuery: String) async -> (status: Int, body: String) {
        let head = HTTPRequest(method: .get, scheme: "http", authority: "127.0.0.1", path: pathAndQuery)
        let response = await respond(to: Request(head: head, body: RequestBody(buffer: ByteBuffer())), source: "127.0.0.1")
        let collector = Gzip.Collector()
        try? await response.body.write(collector)
        return (response.status.code, String(buffer: collector.buffer))
    }
}
