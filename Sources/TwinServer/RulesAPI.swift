import Foundation
import Hummingbird
import TwinAnalytics
import TwinCore
import TwinQuery
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
        AlertJSON(labels: a.labels.dictionary, annotations: a.annotations.dictionary, state: a.state.rawValue,
                  activeAt: TwinTime.rfc3339(a.activeAt), value: a.valueText, firedAt: a.firedAt.map(TwinTime.rfc3339), group: a.group)
    }

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
                              let alerts = g.alerts[i].values.filter { $0.state != .inactive && visible($0.labels.dictionary, p) }
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

    /// `GET /api/v1/twin/actions?from=-24h&to=now`: remediation runs (their output only for callers who see
    /// sensitive values) and notification deliveries.
    func actionRuns(_ p: Params) throws -> Response {
        let a = try time(p, "from", default: "-24h"), b = try time(p, "to", default: "now")
        guard a <= b else { throw APIError.badData("invalid parameter \"from\": must not be after \"to\"") }
        struct Body: Encodable { var runs: [ActionRunRecord]; var deliveries: [DeliveryRecord] }
        var runs = try store.actionRuns(from: a, to: b)
        if !sees(p.identity) { for i in runs.indices { runs[i].output = runs[i].output.isEmpty ? "" : "(hidden: an admin token sees action output)" } }
        if p.identity.scopedHosts != nil { runs = runs.filter { visible(Self.labelMap($0.alert), p) } }
        return try success(Body(runs: runs, deliveries: p.identity.scopedHosts == nil ? try store.deliveries(from: a, to: b) : []))
    }

    /// The labels of an alert key (`{a="b",...}`), for scoping.
    static func labelMap(_ key: String) -> [String: String] {
        guard let e = try? PromQLParser.parse(key.isEmpty ? "{}" : key), case .vector(let vs) = e else { return [:] }
        return Dictionary(vs.matchers.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
    }

    /// `GET /api/v1/silences[?all=1]`: the silences not yet ended (all with `all`); `POST` (admin) creates one
    /// from `matcher` (repeatable), `for` or `ends`, optional `starts`, `comment` and `author`.
    func silences(_ p: Params) throws -> Response {
        if p.isPost {
            if let refusal = AccessControl.refusal(p.identity, .admin, route: "POST /api/v1/silences") { throw refusal }
            guard !store.isReadOnly else { throw APIError.unavailable("this server opened the store read-only; add silences with `hosttwin silence add`") }
            let now = TwinTime.nowMillis()
            let matchers = p.all("matcher")
            do { _ = try AlertSuppression.matchers(matchers) } catch { throw APIError.badData("invalid parameter \"matcher\": \(error)") }
            let starts = try time(p, "starts", default: "now")
            let ends: Int64
            if let d = try p.duration("for") { ends = starts + d } else { ends = try time(p, "ends", default: "") }
            guard ends > starts, ends > now else { throw APIError.badData("a silence needs \"for\" (e.g. 2h) or an \"ends\" after its start and after now") }
            guard let comment = p["comment"], !comment.isEmpty else { throw APIError.badData("missing parameter \"comment\": say why alerts are silenced") }
            let record = SilenceRecord(created: now, starts: starts, ends: ends, matchers: matchers, comment: String(comment.prefix(1000)),
                                       author: String((p["author"] ?? p.identity.tokenID ?? "admin").prefix(200)))
            let id = try store.insertSilence(record)
            audit?.append(.init(kind: "admin", action: "silence.add", role: p.identity.role?.rawValue, token: p.identity.tokenID, source: p.caller, status: 200,
                                detail: "id=\(id) matchers=\(matchers.joined(separator: ",")) until=\(TwinTime.rfc3339(ends))"))
            return try success(["id": id])
        }
        let all = p["all"] == "1" || p["all"] == "true"
        return try success(try store.silences(endingAfter: all ? .min : TwinTime.nowMillis()))
    }

    /// `POST /api/v1/silences/expire` (admin): ends silence `id` now.
    func expireSilence(_ p: Params) throws -> Response {
        guard let text = p["id"], let id = Int64(text) else { throw APIError.badData("missing or bad parameter \"id\"") }
        guard !store.isReadOnly else { throw APIError.unavailable("this server opened the store read-only; expire with `hosttwin silence expire`") }
        guard try store.expireSilence(id: id, at: TwinTime.nowMillis()) else { throw APIError.notFound("no active silence \(id)") }
        audit?.append(.init(kind: "admin", action: "silence.expire", role: p.identity.role?.rawValue, token: p.identity.tokenID, source: p.caller, status: 200, detail: "id=\(id)"))
        return try success(["expired": id])
    }

    /// `GET /api/v1/twin/timeline?from=-1h&to=now[&host=H]`: the window's story (``Timeline``), as
    /// `hosttwin timeline --json`; sensitive values (commands, users, peers) masked for readers as in the state API.
    func timeline(_ p: Params) throws -> Response {
        let a = try time(p, "from", default: "-1h"), b = try time(p, "to", default: "now")
        guard a <= b else { throw APIError.badData("invalid parameter \"from\": must not be after \"to\"") }
        guard b - a <= 7 * 86_400_000 else { throw APIError.badData("a timeline covers at most 7 days; narrow from/to") }
        let (api, identity) = (self, p.identity)
        let lines = try Timeline.build(store: store, from: a, to: b, host: p["host"], present: { api.present($0, to: identity) })
        return try success(identity.scopedHosts == nil ? lines : lines.filter { identity.sees(host: $0.host) })
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
