import Foundation
import Hummingbird
import TwinCore
import TwinRules
import TwinStorage

/// `/api/v1/rules`, `/api/v1/alerts` in Prometheus' shapes (Grafana's alerting view reads them), alerts as
/// of a time from the store, and `POST /-/reload`.
extension TwinAPI {
    struct AlertJSON: Encodable {
        var labels: [String: String]
        var annotations: [String: String]
        var state: String
        var activeAt: String
        var value: String
        var firedAt: String?
        var group: String?
    }

    static func alertJSON(_ a: Alert) -> AlertJSON {
        AlertJSON(labels: Self.dictionary(a.labels), annotations: Self.dictionary(a.annotations), state: a.state.rawValue,
                  activeAt: TwinTime.rfc3339(a.activeAt), value: a.valueText, firedAt: a.firedAt.map(TwinTime.rfc3339), group: a.group)
    }

    static func dictionary(_ l: Labels) -> [String: String] { Dictionary(uniqueKeysWithValues: l.pairs.map { ($0.name, $0.value) }) }

    /// Whether the caller may see an alert (a token confined to a datacenter: its hosts' alerts only).
    func visible(_ labels: [String: String], _ p: Params) -> Bool {
        p.identity.scopedHosts == nil || p.identity.sees(host: labels["host"])
    }

    /// `GET /api/v1/alerts[?at=T]`: the alerts pending and firing now (from the rule engine), or as of T
    /// (from the alert events stored; `at` is HostTwin's addition).
    func alerts(_ p: Params) throws -> Response {
        struct Body: Encodable { var alerts: [AlertJSON] }
        var out: [AlertJSON]
        if p["at"] != nil || rules == nil {
            let at = try time(p, "at", default: "now")
            out = try store.activeAlerts(at: at).map { Self.alertJSON(Alert(record: $0)) }
        } else {
            out = rules!.alerts().filter { $0.state != .inactive }.map(Self.alertJSON)
        }
        return try success(Body(alerts: out.filter { visible($0.labels, p) }))
    }

    /// `GET /api/v1/rules[?type=alert|record]`: every group with its rules, their health, last evaluation
    /// and (alerting rules) their alerts.
    func ruleGroups(_ p: Params) throws -> Response {
        let type = p["type"] ?? ""
        guard ["", "alert", "record"].contains(type) else { throw APIError.badData("invalid parameter \"type\": \"\(type)\" (alert or record)") }
        struct RuleJSON: Encodable {
            var name: String
            var query: String
            var type: String
            var health: String
            var lastError: String?
            var evaluationTime: Double
            var lastEvaluation: String
            var labels: [String: String]
            var state: String?
            var duration: Double?
            var keepFiringFor: Double?
            var annotations: [String: String]?
            var alerts: [AlertJSON]?
        }
        struct GroupJSON: Encodable {
            var name: String; var file: String; var interval: Double; var limit: Int
            var rules: [RuleJSON]; var evaluationTime: Double; var lastEvaluation: String
        }
        struct Body: Encodable { var groups: [GroupJSON] }
        let never = "0001-01-01T00:00:00Z"
        let groups = (rules?.snapshot() ?? []).map { g in
            GroupJSON(name: g.group.name, file: g.file, interval: Double(g.interval) / 1000, limit: g.group.limit,
                      rules: g.group.rules.enumerated().compactMap { i, r -> RuleJSON? in
                          let h = g.health[i]
                          var j = RuleJSON(name: r.name, query: r.conditionText, type: r.isAlert ? "alerting" : "recording", health: h.health,
                                           lastError: h.lastError, evaluationTime: h.duration, lastEvaluation: h.lastEvaluation.map(TwinTime.rfc3339) ?? never,
                                           labels: Dictionary(uniqueKeysWithValues: r.labels.map { ($0.name, $0.value.source) }))
                          if r.isAlert {
                              guard type != "record" else { return nil }
                              let alerts = g.alerts[i].values.filter { $0.state != .inactive && visible(Self.dictionary($0.labels), p) }
                                  .sorted { Labels.promLess($0.labels, $1.labels) }
                              j.state = alerts.contains { $0.state == .firing } ? "firing" : (alerts.isEmpty ? "inactive" : "pending")
                              j.duration = Double(r.holdFor) / 1000
                              j.keepFiringFor = Double(r.keepFiringFor) / 1000
                              j.annotations = Dictionary(uniqueKeysWithValues: r.annotations.map { ($0.name, $0.value.source) })
                              j.alerts = alerts.map(Self.alertJSON)
                          } else if type == "alert" { return nil }
                          return j
                      }, evaluationTime: g.duration, lastEvaluation: g.lastEvaluation.map(TwinTime.rfc3339) ?? never)
        }
        return try success(Body(groups: groups))
    }

    /// `POST /-/reload` (admin): reads the rule files again; the old rules stay when the new ones have errors.
    func reloadRules(_ p: Params) throws -> Response {
        guard let rules else { throw APIError.unavailable("this server evaluates no rules") }
        do {
            let r = try rules.reload()
            struct Body: Encodable { var groups: Int; var rules: Int }
            return try success(Body(groups: r.groups, rules: r.rules))
        } catch {
            throw APIError.internal("failed to reload rules (the previous rules stay): \(error)")
        }
    }
}
