import Foundation
import Hummingbird
import Synchronization
import TwinCore
import TwinSecurity
import TwinStorage

/// A hub's remediation runs for its agents (docs/RULES.md "Actions at a hub"): a rule's action marked
/// `dispatch: agent`, or an admin's dispatch, is stored as an action run naming the agent's host; the agent
/// of that host, long-polling with its host-bound token, takes it, runs the action of that name from its
/// own allow-list (or refuses) and reports how it went. Runs are handed out at most once: a run an agent
/// took and never reported stays "sent"; one no agent asked for within ``expireAfter`` expires.
public final class AgentActionQueue: Sendable {
    let store: TwinStore
    /// A run no agent took within this long (ms) expires rather than act on a stale alert.
    public let expireAfter: Int64
    /// Agents waiting in a long poll, by host; each wakes when a run is queued for its host.
    private let waiters = Mutex<[String: [Int: AsyncStream<Void>.Continuation]]>([:])
    private let nextWaiter = Atomic<Int>(0)
    /// Told of each report (the hub's remediation records whether the alert cleared after it).
    private let reportObservers = Mutex<[@Sendable (_ id: Int64, _ alert: String, _ at: Int64) -> Void]>([])

    public init(store: TwinStore, expireAfter: Int64 = 300_000) {
        self.store = store
        self.expireAfter = expireAfter
    }

    /// Queues `run` (its `agent` names the host) and wakes that host's agent; returns the run's id.
    @discardableResult
    public func dispatch(_ run: ActionRunRecord) throws -> Int64 {
        guard let host = run.agent else { throw TwinError.badInput("a dispatched run names the host whose agent runs it") }
        let id = try store.recordActionRun(run)
        waiters.withLock { w in w[host]?.values.forEach { $0.yield() } }
        return id
    }

    /// The runs queued for `host`, taken now; when there are none, waits up to `wait` for one.
    public func take(host: String, wait: Duration) async throws -> [ActionRunRecord] {
        let id = nextWaiter.add(1, ordering: .relaxed).newValue
        let (woken, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        waiters.withLock { $0[host, default: [:]][id] = wake }
        defer { waiters.withLock { w in w[host]?[id] = nil; if w[host]?.isEmpty == true { w[host] = nil } } }
        // Registered before the first look, so a run queued in between wakes this poll.
        if try store.hasDispatchedRuns(agent: host) || wait <= .zero {
            return try store.claimDispatchedRuns(agent: host, now: TwinTime.nowMillis(), expireAfter: expireAfter)
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { for await _ in woken { return } }
            group.addTask { try? await Task.sleep(for: wait) }
            await group.next()
            group.cancelAll()
        }
        return try store.claimDispatchedRuns(agent: host, now: TwinTime.nowMillis(), expireAfter: expireAfter)
    }

    /// Records `host`'s agent's report of run `id`; false when no such run waits for that agent's report.
    public func report(id: Int64, host: String, _ report: ActionRunReport) throws -> Bool {
        let now = TwinTime.nowMillis()
        guard try store.reportDispatchedRun(id: id, agent: host, report: report, at: now) else { return false }
        if let alert = try store.actionRun(id: id)?.alert {
            for observe in reportObservers.withLock({ $0 }) { observe(id, alert, now) }
        }
        return true
    }

    /// Calls `observer` with each run reported from now on.
    public func onReport(_ observer: @escaping @Sendable (_ id: Int64, _ alert: String, _ at: Int64) -> Void) {
        reportObservers.withLock { $0.append(observer) }
    }
}

extension TwinAPI {
    /// The longest an agent's poll waits for a run: under the server's 30 s idle timeout.
    static let maxActionPoll: Duration = .seconds(25)

    /// The host whose runs the caller may take or report: an agent token's own host (the `host` parameter
    /// must name it), or any host for an admin (the route's ``Access/agent`` refuses everyone else).
    func actionAgentHost(_ p: Params) throws -> String {
        guard agentActions != nil else {
            throw APIError.unavailable("this server dispatches no actions (a hub does: `hosttwin serve` on a data directory no `run` writes, without --follow)")
        }
        guard let host = p["host"], !host.isEmpty else { throw APIError.badData("the host parameter is required") }
        if p.identity.role == .agent, p.identity.host != host {
            throw APIError(type: "forbidden", message: "this agent token is bound to \(p.identity.host.map { "host \($0)" } ?? "no host"), not \(host)", status: .forbidden)
        }
        return host
    }

    /// `GET /api/v1/agent/actions?host=H[&wait=25s]`: the runs dispatched to H's agent, taken now; without
    /// any, the request waits up to `wait` (at most 25 s) for one. Answered on the request's task.
    func agentActionPoll(_ p: Params) async throws -> Response {
        let host = try actionAgentHost(p)
        let wait = try p.duration("wait").map { min(Duration.milliseconds(max($0, 0)), Self.maxActionPoll) } ?? Self.maxActionPoll
        guard polls.acquire(p.caller, limit: 4) else {
            throw APIError(type: "too_many_requests", message: "at most 4 action polls per token at a time", status: .tooManyRequests)
        }
        defer { polls.release(p.caller) }
        struct Item: Encodable {
            var id: Int64, action: String, alert: String, rule: String, value: Double?, time: Int64
        }
        let runs = try await agentActions!.take(host: host, wait: wait)
        return try success(["actions": runs.map {
            Item(id: $0.id ?? 0, action: $0.action, alert: $0.alert, rule: Self.labelMap($0.alert)["alertname"] ?? "", value: $0.value, time: $0.time)
        }])
    }

    /// `POST /api/v1/agent/actions/result` (form: `host`, `id`, `status`, `millis`, `output`, `argv` (JSON
    /// list), `dry_run`): the agent's report of a run it took.
    func agentActionResult(_ p: Params) throws -> Response {
        let host = try actionAgentHost(p)
        guard let idText = p["id"], let id = Int64(idText) else { throw APIError.badData("missing or bad parameter \"id\"") }
        guard let status = p["status"], !status.isEmpty else { throw APIError.badData("missing parameter \"status\"") }
        let argv = try p["argv"].map { text -> [String] in
            guard let list = try? JSONDecoder().decode([String].self, from: Data(text.utf8)), list.count <= 64 else {
                throw APIError.badData("invalid parameter \"argv\": expected a JSON list of at most 64 strings")
            }
            return list
        } ?? []
        let report = ActionRunReport(status: String(status.prefix(500)), millis: max(0, p["millis"].flatMap { Int64($0) } ?? 0),
                                     output: String((p["output"] ?? "").prefix(66_000)), argv: argv, dryRun: p["dry_run"] == "true" || p["dry_run"] == "1")
        guard try agentActions!.report(id: id, host: host, report) else {
            throw APIError.notFound("no run \(id) of host \(host) waits for a report (unknown, another host's, or reported already)")
        }
        return try success(["reported": id])
    }

    /// `POST /api/v1/actions/dispatch` (admin; form: `host`, `action`, optional `comment`): queues action
    /// `action` for the agent of `host`, which runs it only when its own allow-list has it with `from_hub`.
    func dispatchAction(_ p: Params) throws -> Response {
        guard let queue = agentActions else {
            throw APIError.unavailable("this server dispatches no actions (a hub does: `hosttwin serve` on a data directory no `run` writes, without --follow)")
        }
        guard let host = p["host"], !host.isEmpty, host.utf8.count <= 253 else { throw APIError.badData("missing or bad parameter \"host\"") }
        guard let action = p["action"], !action.isEmpty, action.utf8.count <= 200,
              action.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw APIError.badData("missing or bad parameter \"action\": an action's name (letters, digits, _) in the agent's allow-list")
        }
        let by = p.identity.tokenID ?? "admin"
        var labels = ["host": host, "dispatched_by": by]
        if let comment = p["comment"], !comment.isEmpty { labels["comment"] = String(comment.prefix(200)) }
        var run = ActionRunRecord(time: TwinTime.nowMillis(), action: action, alert: Labels(dictionary: labels).text, argv: [], dryRun: false,
                                  status: "queued for agent \(host)", millis: 0, output: "")
        run.agent = host
        let id = try queue.dispatch(run)
        audit?.append(.init(kind: "admin", action: "action.dispatch", role: p.identity.role?.rawValue, token: p.identity.tokenID, source: p.caller, status: 200,
                            detail: "id=\(id) host=\(host) action=\(action)"))
        return try success(["id": id])
    }
}
