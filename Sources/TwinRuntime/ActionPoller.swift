import Foundation
import Logging
import ServiceLifecycle
import TwinCore
import TwinServer
import TwinStorage

/// An agent's side of actions dispatched by a hub (docs/RULES.md "Actions at a hub"): long-polls the hub
/// with the agent's host-bound token for the runs queued for this host, runs each through
/// ``Remediation/runDispatched(_:alert:rule:value:from:at:)`` — only actions of this agent's own allow-list
/// marked `from_hub` — and reports how each went. A run is handed out once; a report that cannot be
/// delivered is retried a few times, then logged (the run is recorded in the agent's store either way).
public final class ActionPoller: Service {
    let host: String
    let remote: RemoteTwin
    let remediation: Remediation
    let logger: Logger

    /// Each poll waits at most this long at the hub for a run.
    static let pollWait = 25

    public init(host: String, remote: RemoteTwin, remediation: Remediation, logger: Logger) {
        self.host = host
        var remote = remote
        remote.timeout = .seconds(Int64(Self.pollWait + 15))
        self.remote = remote
        self.remediation = remediation
        self.logger = logger
    }

    var hubName: String { "\(remote.host):\(remote.port)" }

    public func run() async throws {
        await runSessions("action poll at \(hubName)", backoff: .milliseconds(500), maxBackoff: .seconds(5), logger: logger) { [self] in try await poll() }
    }

    struct Poll: Decodable {
        struct Item: Decodable { var id: Int64; var action: String; var alert: String; var rule: String; var value: Double?; var time: Int64 }
        struct Data: Decodable { var actions: [Item] }
        var data: Data
    }

    private var query: String { "host=" + (host.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? host) }

    /// One long poll, and a task per run it hands over (a slow action does not hold the next poll).
    private func poll() async throws {
        let r = try await remote.fetch("/api/v1/agent/actions?\(query)&wait=\(Self.pollWait)s")
        if r.status == 404 || r.status == 503 {
            // A hub that dispatches nothing (a replica, or one from before dispatch): ask again later.
            logger.debug("\(hubName) dispatches no actions (HTTP \(r.status)); asking again in a minute")
            try await Task.sleep(for: .seconds(60))
            return
        }
        guard r.status == 200 else { throw TwinError.unavailable("HTTP \(r.status): \(r.text.prefix(300))") }
        let items: [Poll.Item]
        do { items = try JSONDecoder().decode(Poll.self, from: Foundation.Data(r.body)).data.actions } catch {
            throw TwinError.unavailable("the hub's answer is not a list of actions: \(error)")
        }
        for item in items {
            Task { [self] in
                logger.notice("\(hubName) dispatched action \(item.action) for \(item.alert) (run \(item.id))")
                let report = await remediation.runDispatched(item.action, alert: item.alert, rule: item.rule, value: item.value,
                                                             from: hubName, at: TwinTime.nowMillis())
                await deliver(report, of: item.id)
            }
        }
    }

    /// Posts a run's report, retrying a few times while the hub is away.
    private func deliver(_ report: ActionRunReport, of id: Int64) async {
        let argv = String(decoding: (try? JSONEncoder().encode(report.argv)) ?? Foundation.Data("[]".utf8), as: UTF8.self)
        let form = [("host", host), ("id", String(id)), ("status", report.status), ("millis", String(report.millis)), ("output", report.output),
                    ("argv", argv), ("dry_run", report.dryRun ? "true" : "false")]
        for attempt in 1...5 {
            do {
                let r = try await remote.fetch("/api/v1/agent/actions/result", form: form)
                if r.status == 200 { return }
                // 4xx: the hub will not take it (another host's run, reported already): retrying changes nothing.
                if (400..<500).contains(r.status) {
                    logger.warning("\(hubName) refused the report of run \(id): HTTP \(r.status) \(r.text.prefix(200))")
                    return
                }
            } catch {
                if attempt == 5 { logger.warning("the report of run \(id) did not reach \(hubName): \(error)") }
            }
            try? await Task.sleep(for: .seconds(attempt * 2))
        }
    }
}
