import Foundation
import Logging
import Synchronization
import TwinCore
import TwinRules
import TwinServer
import TwinStorage

/// Runs the remediation actions rules name when their alerts fire: only actions of the admin's allow-list
/// (``AlertingConfig/actions``), as argv (never a shell) with a clean environment, a timeout, a cool-down per
/// alert, a cap per hour, optionally as an unprivileged user and in dry-run mode. Each run is stored with
/// its alert, status and bounded output; at the first evaluation after it ends, whether the alert cleared is
/// recorded too. Runs happen on their own threads: a hanging action holds neither rules nor collection.
/// At a hub, an action marked `dispatch: agent` is queued for the agent of the alert's host instead
/// (``AgentActionQueue``); at an agent, ``runDispatched(_:alert:rule:value:from:at:)`` runs what a hub sent.
public final class Remediation: Sendable {
    let config: AlertingConfig
    let store: TwinStore
    let logger: Logger
    /// A hub's queue of runs for agents (actions with `dispatch: agent`); nil elsewhere.
    let dispatcher: AgentActionQueue?
    struct State {
        /// Last start per action and alert (cool-down).
        var lastRun: [String: Int64] = [:]
        /// Starts per action in the last hour.
        var starts: [String: [Int64]] = [:]
        /// Finished runs waiting for an evaluation at or after `notBefore` to say whether their alert cleared.
        var finished: [(id: Int64, alert: String, notBefore: Int64)] = []
        /// Runs this hub dispatched whose agents have not reported yet (an admin's dispatches are not followed).
        var dispatched = Set<Int64>()
        var running = 0
    }
    private let state = Mutex(State())

    /// How long after an agent's report the hub looks whether the alert cleared: the agent's next ticks
    /// must reach the hub first.
    static let reportSettle: Int64 = 3_000

    public init(config: AlertingConfig, store: TwinStore, dispatcher: AgentActionQueue? = nil, logger: Logger) {
        self.config = config
        self.store = store
        self.dispatcher = dispatcher
        self.logger = logger
        dispatcher?.onReport { [weak self] id, alert, at in
            self?.state.withLock { s in
                if s.dispatched.remove(id) != nil { s.finished.append((id, alert, at + Self.reportSettle)) }
            }
        }
    }

    /// Whether an action run is under way (tests and shutdown).
    public var isIdle: Bool { state.withLock { $0.running == 0 && $0.finished.isEmpty } }

    /// After an evaluation at `now`: records whether the alerts of runs finished before it cleared, and
    /// starts the actions of alerts that began firing.
    public func evaluated(now: Int64, transitions: [AlertTransition], alerts: [Alert], actionsOf: (Alert) -> [String]) {
        // Outcomes: an alert is cleared when it is no longer firing or pending.
        let active = Set(alerts.filter { $0.state != .inactive }.map(\.labels.text))
        let done = state.withLock { s -> [(id: Int64, alert: String, notBefore: Int64)] in
            let due = s.finished.filter { $0.notBefore <= now }
            s.finished.removeAll { $0.notBefore <= now }
            return due
        }
        for f in done {
            let cleared = !active.contains(f.alert)
            try? store.recordActionOutcome(id: f.id, cleared: cleared, at: now)
            logger.notice("remediation of \(f.alert): the alert \(cleared ? "cleared" : "still holds") at the next evaluation")
        }
        for t in transitions where t.kind == .firing {
            for name in actionsOf(t.alert) { start(name, alert: t.alert.labels.text, rule: t.alert.rule, value: t.alert.value, host: t.alert.labels["host"], at: now) }
        }
    }

    /// Takes a run of `name` for `alert` within the action's cool-down and hourly cap; the reason when not.
    private func admit(_ name: String, _ action: AlertingConfig.Action, alert key: String, at now: Int64) -> String? {
        state.withLock { s in
            if let last = s.lastRun[name + "\u{0}" + key], now - last < action.cooldown { return "cooling down (last run \(TwinTime.rfc3339(last)))" }
            var recent = (s.starts[name] ?? []).filter { now - $0 < 3_600_000 }
            guard recent.count < action.maxPerHour else { s.starts[name] = recent; return "max_per_hour (\(action.maxPerHour)) reached" }
            recent.append(now)
            s.starts[name] = recent
            s.lastRun[name + "\u{0}" + key] = now
            return nil
        }
    }

    /// Starts action `name` of the allow-list for the alert with label set `key` (the rule's name, its value,
    /// its `host` label), within its cool-down and cap: run here, or dispatched to the host's agent.
    public func start(_ name: String, alert key: String, rule: String, value: Double, host: String?, at now: Int64) {
        guard let action = config.actions[name] else {
            logger.error("action \(name) of \(rule) is not in the allow-list; nothing run")
            return
        }
        if let refusal = admit(name, action, alert: key, at: now) {
            logger.notice("action \(name) for \(key) not run: \(refusal)")
            _ = try? store.recordActionRun(ActionRunRecord(time: now, action: name, alert: key, argv: action.argv, dryRun: action.dryRun,
                                                       status: "skipped: \(refusal)", millis: 0, output: ""))
            return
        }
        if action.dispatch { return dispatch(name, action, alert: key, value: value, host: host, at: now) }
        execute(name, action, alert: key, rule: rule, value: value, at: now) { [self] _, id in
            if let id { state.withLock { $0.finished.append((id, key, 0)) } }
        }
    }

    /// A hub's action: queued for the agent of the alert's host.
    private func dispatch(_ name: String, _ action: AlertingConfig.Action, alert key: String, value: Double, host: String?, at now: Int64) {
        var run = ActionRunRecord(time: now, action: name, alert: key, argv: [], dryRun: action.dryRun, status: "", millis: 0, output: "")
        run.value = value
        do {
            guard let host else { throw TwinError.badInput("the alert has no host label to dispatch to") }
            guard let dispatcher else { throw TwinError.badInput("dispatch: agent acts only at a hub (`hosttwin serve` receiving agents)") }
            if action.dryRun {
                run.status = "dry run: not dispatched to agent \(host)"
                try store.recordActionRun(run)
            } else {
                run.agent = host
                run.status = "queued for agent \(host)"
                let id = try dispatcher.dispatch(run)
                state.withLock { _ = $0.dispatched.insert(id) }
            }
            logger.notice("action \(name) for \(key): \(run.status)")
        } catch {
            logger.warning("action \(name) for \(key) not dispatched: \(error)")
            run.status = "not dispatched: \(error)"
            _ = try? store.recordActionRun(run)
        }
    }

    /// An agent's side of a hub's dispatch: runs `name` from this agent's allow-list when it is open to hubs
    /// (`from_hub`), within its cool-down and cap, records the run here, and gives back what to report.
    public func runDispatched(_ name: String, alert key: String, rule: String, value: Double?, from hub: String, at now: Int64) async -> ActionRunReport {
        guard let action = config.actions[name], action.fromHub, !action.dispatch else {
            let why = config.actions[name] == nil ? "\(name) is not in this agent's allow-list" : "\(name) is not open to hubs (from_hub: true in the agent's alerting configuration)"
            logger.warning("action \(name) dispatched by \(hub) for \(key) refused: \(why)")
            _ = try? store.recordActionRun(ActionRunRecord(time: now, action: name, alert: key, argv: [], dryRun: false, status: "refused (from \(hub)): \(why)", millis: 0, output: ""))
            return ActionRunReport(status: "refused: \(why)", millis: 0, output: "", argv: [], dryRun: false)
        }
        if let refusal = admit(name, action, alert: key, at: now) {
            logger.notice("action \(name) dispatched by \(hub) for \(key) not run: \(refusal)")
            _ = try? store.recordActionRun(ActionRunRecord(time: now, action: name, alert: key, argv: action.argv, dryRun: action.dryRun,
                                                       status: "skipped (from \(hub)): \(refusal)", millis: 0, output: ""))
            return ActionRunReport(status: "skipped: \(refusal)", millis: 0, output: "", argv: action.argv, dryRun: action.dryRun)
        }
        return await withCheckedContinuation { done in
            execute(name, action, alert: key, rule: rule, value: value, at: now) { record, _ in
                done.resume(returning: ActionRunReport(status: record.status, millis: record.millis, output: record.output, argv: record.argv, dryRun: record.dryRun))
            }
        }
    }

    /// Runs `action` on a thread of its own (a hanging action holds nothing else), records the run and
    /// hands it, with its id, to `finished`.
    private func execute(_ name: String, _ action: AlertingConfig.Action, alert key: String, rule: String, value: Double?, at now: Int64,
                         finished: @escaping @Sendable (ActionRunRecord, Int64?) -> Void) {
        state.withLock { $0.running += 1 }
        let (store, logger) = (self.store, self.logger)
        Thread.detachNewThread { [self] in
            var argv = action.argv
            if let user = action.user, getuid() == 0, let pw = getpwnam(user) {
                // Drop to the user: setpriv takes argv and execs it, no shell in between.
                argv = ["/usr/bin/setpriv", "--reuid=\(pw.pointee.pw_uid)", "--regid=\(pw.pointee.pw_gid)", "--init-groups", "--"] + argv
            }
            var record = ActionRunRecord(time: now, action: name, alert: key, argv: argv, dryRun: action.dryRun, status: "dry run", millis: 0, output: "")
            if !action.dryRun {
                var p = ArgvProcess(argv: argv)
                p.timeout = action.timeout
                p.environment = ["HOSTTWIN_ALERT": rule, "HOSTTWIN_ALERT_LABELS": key, "HOSTTWIN_ALERT_VALUE": value.map { String($0) } ?? ""]
                do {
                    let r = try p.run()
                    record.status = r.status
                    record.millis = r.millis
                    record.output = r.output + (r.outputCut ? "\n[output cut at 64 KiB]" : "")
                } catch {
                    record.status = "failed to start: \(error)"
                }
            }
            logger.notice("action \(name) for \(key): \(record.status) in \(record.millis) ms\(action.dryRun ? " (dry run: nothing executed)" : "")")
            let id = try? store.recordActionRun(record)
            finished(record, id)
            self.state.withLock { $0.running -= 1 }
        }
    }
}
