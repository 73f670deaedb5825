import Foundation
import Logging
import Synchronization
import TwinCore
import TwinRules
import TwinServer
import TwinStorage

/// Sends alert changes where the alerting configuration says: Alertmanagers (API v2, firing alerts resent
/// every `resend_every` with an `endsAt` ahead, resolved ones with their end — what Prometheus sends), webhooks
/// (Alertmanager's webhook JSON, once per change), the log, and commands (the same JSON on stdin). Each
/// channel delivers on its own serial queue with retries (1, 2, 4, 8 s) and every delivery is recorded in the
/// store; nothing here waits on the rules' task.
public final class AlertNotifier: Sendable {
    let config: AlertingConfig
    let store: TwinStore
    let logger: Logger
    let externalURL: String
    private let queues: [DispatchQueue]
    private let lastResend = Mutex<Int64>(0)
    /// Retries after a failed attempt (ms); tests shorten them.
    let backoff: [Int64]

    public init(config: AlertingConfig, store: TwinStore, logger: Logger, externalURL: String = "", backoff: [Int64] = [1000, 2000, 4000, 8000]) {
        self.config = config
        self.store = store
        self.logger = logger
        self.externalURL = externalURL
        self.backoff = backoff
        queues = config.channels.indices.map { DispatchQueue(label: "hosttwin.notify.\($0)") }
    }

    /// After an evaluation at `now`: the changes it made (`transitions`) and every alert held (`alerts`).
    public func evaluated(now: Int64, transitions: [AlertTransition], alerts: [Alert]) {
        let changed = transitions.filter { $0.kind == .firing || $0.kind == .resolved }.map(\.alert)
        let resend = lastResend.withLock { last in
            guard now - last >= config.resendEvery else { return false }
            last = now
            return true
        }
        for (i, channel) in config.channels.enumerated() {
            switch channel {
            case .alertmanager:
                // Changes at once; every firing alert again each resend interval (Alertmanager forgets an alert
                // whose endsAt passes).
                let send = resend ? alerts.filter { $0.state == .firing } + changed.filter { $0.state == .inactive } : changed
                guard !send.isEmpty else { continue }
                deliver(i, channel, count: send.count, body: Self.alertmanagerBody(send, now: now, resendEvery: config.resendEvery, externalURL: externalURL))
            case .webhook, .command:
                guard !changed.isEmpty else { continue }
                deliver(i, channel, count: changed.count, body: Self.webhookBody(changed, externalURL: externalURL))
            case .log:
                for a in changed {
                    logger.notice("ALERT \(a.state == .firing ? "FIRING" : "RESOLVED") \(a.labels.text) \(a.annotations.text)")
                }
                if !changed.isEmpty {
                    try? store.recordDelivery(DeliveryRecord(time: now, channel: channel.name, alerts: changed.count, ok: true, attempts: 1, error: nil))
                }
            }
        }
    }

    private func deliver(_ index: Int, _ channel: AlertingConfig.Channel, count: Int, body: [UInt8]) {
        let (store, logger, backoff) = (self.store, self.logger, self.backoff)
        queues[index].async {
            var attempts = 0
            var lastError: String?
            while attempts <= backoff.count {
                if attempts > 0 { usleep(UInt32(backoff[attempts - 1] * 1000)) }
                attempts += 1
                do {
                    try Self.send(channel, body)
                    lastError = nil
                    break
                } catch {
                    lastError = "\(error)"
                }
            }
            if let lastError { logger.warning("notification to \(channel.name) failed after \(attempts) attempts: \(lastError)") }
            try? store.recordDelivery(DeliveryRecord(time: TwinTime.nowMillis(), channel: channel.name, alerts: count, ok: lastError == nil,
                                                     attempts: attempts, error: lastError))
        }
    }

    struct DeliveryError: Error, CustomStringConvertible { var description: String }

    static func send(_ channel: AlertingConfig.Channel, _ body: [UInt8]) throws {
        switch channel {
        case .alertmanager(let url), .webhook(let url):
            var client = try RemoteTwin(url: url.absoluteString)
            client.port = url.port ?? (url.scheme == "https" ? 443 : 80)
            client.timeout = .seconds(10)
            var path = url.path.isEmpty ? "/" : url.path
            if case .alertmanager = channel { path = (url.path.hasSuffix("/") ? String(url.path.dropLast()) : url.path) + "/api/v2/alerts" }
            if let q = url.query { path += "?" + q }
            let r = try client.post(path, json: body)
            guard (200..<300).contains(r.status) else { throw DeliveryError(description: "HTTP \(r.status): \(r.text.prefix(200))") }
        case .command(let argv):
            var p = ArgvProcess(argv: argv)
            p.stdin = body
            p.timeout = 30_000
            let r = try p.run()
            guard r.succeeded else { throw DeliveryError(description: "\(argv[0]) ended with \(r.status): \(r.output.prefix(200))") }
        case .log: break
        }
    }

    // MARK: Bodies

    struct AMAlert: Encodable {
        var labels: [String: String]
        var annotations: [String: String]
        var startsAt: String
        var endsAt: String
        var generatorURL: String
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    /// Alertmanager API v2's `postableAlerts`, as Prometheus' notifier builds them: startsAt the time the
    /// alert fired, endsAt its resolution, or for a firing alert four resend intervals ahead.
    static func alertmanagerBody(_ alerts: [Alert], now: Int64, resendEvery: Int64, externalURL: String) -> [UInt8] {
        let list = alerts.map { a in
            AMAlert(labels: a.labels.dictionary, annotations: a.annotations.dictionary, startsAt: TwinTime.rfc3339(a.firedAt ?? a.activeAt),
                    endsAt: TwinTime.rfc3339(a.state == .inactive ? (a.resolvedAt ?? now) : now + 4 * resendEvery),
                    generatorURL: generatorURL(a, externalURL))
        }
        return Array((try? encoder.encode(list)) ?? Data("[]".utf8))
    }

    struct WebhookAlert: Encodable {
        var status: String
        var labels: [String: String]
        var annotations: [String: String]
        var startsAt: String
        var endsAt: String
        var generatorURL: String
        var fingerprint: String
    }
    struct WebhookBody: Encodable {
        var version = "4"
        var groupKey: String
        var truncatedAlerts = 0
        var status: String
        var receiver = "hosttwin"
        var groupLabels: [String: String] = [:]
        var commonLabels: [String: String]
        var commonAnnotations: [String: String]
        var externalURL: String
        var alerts: [WebhookAlert]
    }

    /// Alertmanager's webhook JSON (version 4) for a set of changed alerts.
    static func webhookBody(_ alerts: [Alert], externalURL: String) -> [UInt8] {
        let items = alerts.map { a in
            WebhookAlert(status: a.state == .firing ? "firing" : "resolved", labels: a.labels.dictionary, annotations: a.annotations.dictionary,
                         startsAt: TwinTime.rfc3339(a.firedAt ?? a.activeAt),
                         endsAt: a.state == .firing ? "0001-01-01T00:00:00Z" : TwinTime.rfc3339(a.resolvedAt ?? a.activeAt),
                         generatorURL: generatorURL(a, externalURL), fingerprint: String(format: "%016llx", fnv(a.labels.text)))
        }
        func common(_ maps: [[String: String]]) -> [String: String] {
            guard var c = maps.first else { return [:] }
            for m in maps.dropFirst() { c = c.filter { m[$0.key] == $0.value } }
            return c
        }
        let body = WebhookBody(groupKey: "{}:{}", status: items.contains { $0.status == "firing" } ? "firing" : "resolved",
                               commonLabels: common(items.map(\.labels)), commonAnnotations: common(items.map(\.annotations)),
                               externalURL: externalURL, alerts: items)
        return Array((try? encoder.encode(body)) ?? Data("{}".utf8))
    }

    static func generatorURL(_ a: Alert, _ externalURL: String) -> String {
        externalURL.isEmpty ? "" : externalURL + "/api/v1/alerts"
    }

    static func fnv(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}
