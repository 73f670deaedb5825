import Foundation
import Logging
import Synchronization
import TwinCore
import TwinRules
import TwinStorage

/// Runs the remediation actions rules name when their alerts fire: only actions of the admin's allow-list
/// (``AlertingConfig/actions``), as argv (never a shell) with a clean environment, a timeout, a cool-down per
/// alert, a cap per hour, optionally as an unprivileged user and in dry-run mode. Each run is stored with
/// its alert, status and bounded output; at the first evaluation after it ends, whether the alert cleared is
/// recorded too. Runs happen on their own threads: a hanging action holds neither rules nor collection.
public final class Remediation: Sendable {
    let config: AlertingConfig
    let store: TwinStore
    let logger: Logger
    struct State {
        /// Last start per action and alert (cool-down).
        var lastRun: [String: Int64] = [:]
        /// Starts per action in the last hour.
        var starts: [String: [Int64]] = [:]
        /// Finished runs waiting for the next evaluation to say whether their alert cleared.
        var finished: [(id: Int64, alert: String)] = []
        var running = 0
    }
    private let state = Mutex(State())

    public init(config: AlertingConfig, store: TwinStore, logger: Logger) {
        self.config = config
        self.store = store
        self.logger = logger
    }

    /// Whether an action run is under way (tests and shutdown).
    public var isIdle: Bool { state.withLock { $0.running == 0 && $0.finished.isEmpty } }

    /// After an evaluation at `now`: records whether the alerts of runs finished before it cleared, and
    /// starts the actions of alerts that began firing.
    public func evaluated(now: Int64, transitions: [AlertTransition], alerts: [Alert], actionsOf: (Alert) -> [String]) {
        // Outcomes: an alert is cleared when it is no longer firing or pending.
        let active = Set(alerts.filter { $0.state != .inactive }.map(\.labels.text))
        let done = state.withLock { s -> [(id: Int64, alert: String)] in
            let d = s.finished
            s.finished = []
            return d
        }
        for f in done {
            let cleared = !active.contains(f.alert)
            try? store.recordActionOutcome(id: f.id, cleared: cleared, at: now)
            logger.notice("remediation of \(f.alert): the alert \(cleared ? "cleared" : "still holds") at the next evaluation")
        }
        for t in transitions where t.kind == .firing {
            for name in actionsOf(t.alert) { start(name, for: t.alert, at: now) }
        }
    }

    private func start(_ name: String, for alert: Alert, at now: Int64) {
        let key = alert.labels.text
        guard let action = config.actions[name] else {
            logger.error("action \(name) of \(alert.rule) is not in the allow-list; nothing run")
            return
        }
        let refusal: String? = state.withLock { s in
            if let last = s.lastRun[name + "\u{0}" + key], now - last < action.cooldown { return "cooling down (last run \(TwinTime.rfc3339(last)))" }
            var recent = (s.starts[name] ?? []).filter { now - $0 < 3_600_000 }
            guard recent.count < action.maxPerHour else { s.starts[name] = recent; return "max_per_hour (\(action.maxPerHour)) reached" }
            recent.append(now)
            s.starts[name] = recent
            s.lastRun[name + "\u{0}" + key] = now
            s.running += 1
            return nil
        }
        if let refusal {
            logger.notice("action \(name) for \(key) not run: \(refusal)")
            _ = try? store.recordActionRun(ActionRunRecord(time: now, action: name, alert: key, argv: action.argv, dryRun: action.dryRun,
                                                       status: "skipped: \(refusal)", millis: 0, output: ""))
            return
        }
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
                p.environment = ["HOSTTWIN_ALERT": alert.rule, "HOSTTWIN_ALERT_LABELS": key, "HOSTTWIN_ALERT_VALUE": String(alert.value)]
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
            self.state.withLock { s in
                s.running -= 1
                if let id { s.finished.append((id, key)) }
            }
        }
    }
}
