import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import TwinCore
import TwinRules
import TwinStorage

/// Evaluates the twin's rules after committed ticks (``TickSink``) at which a group is due, on its own task
/// so a slow rule never delays collection: ticks that arrive while an evaluation runs collapse into the newest. A hub,
/// which has no ticks of its own, evaluates on a timer instead. SIGHUP reloads the rule files.
public final class RuleService: Service, TickSink {
    public let runner: RuleRunner
    let notifier: AlertNotifier?
    let remediation: Remediation?
    /// Silences are read from the store; inhibitions come from here.
    let alerting: AlertingConfig
    let logger: Logger
    /// On a hub: evaluate every this many ms by the clock (nil: at ticks).
    let timer: Int64?
    private let ticks: AsyncStream<Int64>
    private let continuation: AsyncStream<Int64>.Continuation
    /// The host's entities as of the latest tick: each tick replaces the kinds its collectors observed. Once
    /// one tick has run every collector (the first does), or ten minutes after the first tick handed here, a
    /// kind still missing has no entities.
    private let latest = Mutex<(first: Int64, snapshot: StateSnapshot)?>(nil)
    /// The cost of evaluating, on `/metrics`: evaluations and the seconds they took (also per group:
    /// `hosttwin_rule_group_evaluation_seconds_total{rule_group}`).
    private let evaluations = Metrics.Counter(label: "hosttwin_rule_evaluations_total")
    private let evaluationSeconds = FloatingPointCounter(label: "hosttwin_rule_evaluation_seconds_total")

    public init(runner: RuleRunner, alerting: AlertingConfig = AlertingConfig(), notifier: AlertNotifier? = nil, remediation: Remediation? = nil,
                timer: Int64? = nil, logger: Logger) {
        self.runner = runner
        self.alerting = alerting
        self.notifier = notifier
        self.remediation = remediation
        self.timer = timer
        self.logger = logger
        (ticks, continuation) = AsyncStream.makeStream(of: Int64.self, bufferingPolicy: .bufferingNewest(1))
    }

    public func committed(_ tick: CommittedTick) {
        runner.recent.feed(at: tick.time, ids: tick.ids, values: tick.values)
        latest.withLock { held in
            var (first, s) = held ?? (tick.time, StateSnapshot(time: tick.time, entities: [:], complete: false))
            s.time = tick.time
            s.complete = s.complete || tick.time - first >= 600_000 || Self.ranEveryCollector(tick)
            // Shared with the observation, not copied: converted only for the kinds a condition reads.
            for (kind, list) in tick.observation.entities { s.entities[kind] = list }
            held = (first, s)
        }
        // Most ticks have no group due (the built-in ones run every 5 s or more): unless notifications or
        // remediation follow the clock between evaluations, the task is not woken for them.
        if notifier != nil || remediation != nil || runner.isDue(at: tick.time) { continuation.yield(tick.time) }
    }
    public func collectionStopped() { continuation.finish() }

    /// Whether every collector ran in `tick`: its observation's health lines name the collectors that ran
    /// in it, the tick's `health` every collector that has run.
    static func ranEveryCollector(_ tick: CommittedTick) -> Bool {
        Set(tick.observation.health.map(\.collector)).isSuperset(of: tick.health.map(\.collector))
    }

    public func run() async throws {
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        signal(SIGHUP, SIG_IGN)
        hup.setEventHandler { [runner, logger] in
            do {
                let r = try runner.reload()
                logger.info("rules reloaded on SIGHUP: \(r.rules) rules in \(r.groups) groups")
            } catch {
                logger.error("rules not reloaded (the previous rules stay): \(error)")
            }
        }
        hup.resume()
        defer { hup.cancel() }
        if let timer {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                evaluate(at: TwinTime.nowMillis())
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(timer)) }
            }
        } else {
            await cancelWhenGracefulShutdown { [self] in
                for await t in ticks { evaluate(at: t) }
            }
        }
    }

    func evaluate(at t: Int64) {
        let started = DispatchTime.now().uptimeNanoseconds
        do {
            let transitions = try runner.evaluate(at: t, snapshot: latest.withLock { $0?.snapshot }) { group, seconds in
                FloatingPointCounter(label: "hosttwin_rule_group_evaluation_seconds_total", dimensions: [("rule_group", group)]).increment(by: seconds)
            }
            for tr in transitions {
                // Pending and cleared are steps before an alert fires (or instead of it): info, not notice.
                let level: Logger.Level = tr.kind == .firing || tr.kind == .resolved ? .notice : .info
                logger.log(level: level, "alert \(tr.kind.rawValue): \(tr.alert.labels.text)\(tr.alert.annotations["summary"].map { " — " + $0 } ?? "")")
            }
            if notifier != nil || remediation != nil {
                var alerts = runner.alerts()
                var changes = transitions
                // Silenced and inhibited alerts are kept (and stored) but neither notified nor remediated.
                let silences = (try? runner.store.silences(endingAfter: t)) ?? []
                let hidden = alerting.suppressed(alerts, silences: silences, at: t)
                if !hidden.isEmpty {
                    alerts.removeAll { hidden.contains($0.labels) }
                    changes.removeAll { hidden.contains($0.alert.labels) }
                }
                notifier?.evaluated(now: t, transitions: changes, alerts: alerts)
                remediation?.evaluated(now: t, transitions: changes, alerts: alerts, actionsOf: runner.actions(of:))
            }
        } catch {
            logger.warning("alert changes not stored: \(error)")
        }
        evaluations.increment()
        evaluationSeconds.increment(by: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
    }
}
