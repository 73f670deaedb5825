import Foundation
import TwinCore

/// One change of an alert's state as the store keeps it: an event of type `alert` whose key is the alert's
/// label set and whose detail is this record's JSON. "What fired last week" is a range of these; the
/// alerts as of a time are each alert's latest record before it.
public struct AlertRecord: Sendable, Codable, Equatable {
    /// When the alert entered `state` (ms).
    public var time: Int64
    /// `pending`, `firing`, `resolved` (it fired and stopped) or `cleared` (it stopped before firing).
    public var state: String
    public var group: String
    public var rule: String
    public var labels: [String: String]
    public var annotations: [String: String]
    public var value: Double
    /// When the condition began to hold.
    public var activeAt: Int64
    public var firedAt: Int64?

    public init(time: Int64, state: String, group: String, rule: String, labels: [String: String], annotations: [String: String],
                value: Double, activeAt: Int64, firedAt: Int64?) {
        (self.time, self.state, self.group, self.rule, self.labels, self.annotations) = (time, state, group, rule, labels, annotations)
        (self.value, self.activeAt, self.firedAt) = (value, activeAt, firedAt)
    }

    /// Whether the alert is pending or firing after this change.
    public var isActive: Bool { state == "pending" || state == "firing" }

    /// The alert's identity: its label set's text.
    public var key: String { Labels(dictionary: labels).text }

    /// A line for event lists: state, name, and the `summary` annotation when there is one.
    public var summary: String {
        "\(state) \(rule)" + (annotations["summary"].map { ": \($0)" } ?? "")
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "+Inf", negativeInfinity: "-Inf", nan: "NaN")
        return e
    }()

    static func decode(_ json: String) -> AlertRecord? {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "+Inf", negativeInfinity: "-Inf", nan: "NaN")
        return try? d.decode(AlertRecord.self, from: Data(json.utf8))
    }
}

extension TwinStore {
    /// Stores alert state changes and withdraws the pending records of alerts that cleared before they
    /// fired (`withdrawing`: each one's key and the time it went pending), in one transaction. A withdrawn
    /// alert leaves no record: a host whose short-lived listeners each go pending would otherwise keep two
    /// events for every one of them.
    public func recordAlerts(_ records: [AlertRecord], withdrawing: [(key: String, pendingAt: Int64)] = []) throws {
        guard !records.isEmpty || !withdrawing.isEmpty else { return }
        try database.write { db in
            for w in withdrawing {
                for row in try db.rows("SELECT id, detail FROM events WHERE type = 'alert' AND key = ? AND t = ?", [w.key, w.pendingAt])
                where row[1].string.flatMap(AlertRecord.decode)?.state == "pending" {
                    try db.execute("DELETE FROM events WHERE id = ?", [try row.integer(0)])
                }
            }
            for r in records {
                try db.execute("INSERT INTO events(t, type, kind, key, detail) VALUES (?, 'alert', NULL, ?, ?)",
                               [r.time, r.key, String(decoding: try AlertRecord.encoder.encode(r), as: UTF8.self)])
            }
        }
    }

    /// Alert state changes in `[from, to]`, oldest first, at most `limit`.
    public func alertHistory(from: Int64, to: Int64, limit: Int = 10_000) throws -> [AlertRecord] {
        try database.read { db in
            try db.rows("SELECT detail FROM events WHERE type = 'alert' AND t >= ? AND t <= ? ORDER BY t, id LIMIT ?", [from, to, limit])
                .compactMap { $0[0].string.flatMap(AlertRecord.decode) }
        }
    }

    /// The alerts pending or firing at `at`: each alert's latest change at or before `at`, where that
    /// change left it active. Ordered by rule, then labels.
    public func activeAlerts(at: Int64) throws -> [AlertRecord] {
        try database.read { db in
            let rows = try db.rows("""
                SELECT detail FROM events WHERE id IN (
                    SELECT (SELECT id FROM events x WHERE x.type = 'alert' AND x.key = k.key AND x.t <= ? ORDER BY x.t DESC, x.id DESC LIMIT 1)
                    FROM (SELECT DISTINCT key FROM events WHERE type = 'alert') k)
                """, [at])
            return rows.compactMap { $0[0].string.flatMap(AlertRecord.decode) }.filter(\.isActive).sorted { ($0.rule, $0.key) < ($1.rule, $1.key) }
        }
    }
}

/// One notification sent (or given up on) to one channel.
public struct DeliveryRecord: Sendable, Codable, Equatable {
    public var time: Int64
    public var channel: String
    public var alerts: Int
    public var ok: Bool
    public var attempts: Int
    public var error: String?
    public init(time: Int64, channel: String, alerts: Int, ok: Bool, attempts: Int, error: String?) {
        (self.time, self.channel, self.alerts, self.ok, self.attempts, self.error) = (time, channel, alerts, ok, attempts, error)
    }
}

/// One remediation action run for an alert: what ran, how it ended, its output (bounded), and whether the
/// alert's condition had cleared at the next evaluation after it.
public struct ActionRunRecord: Sendable, Codable, Equatable {
    public var id: Int64?
    public var time: Int64
    public var action: String
    /// The alert's label set (its key among alert events).
    public var alert: String
    public var argv: [String]
    public var dryRun: Bool
    /// `exit 0`, `signal 9`, `timeout`, `dry run`, `failed to start: ...`.
    public var status: String
    public var millis: Int64
    public var output: String
    public var cleared: Bool?
    public var checkedAt: Int64?
    /// A run dispatched to the agent of this host (at a hub); nil: run here.
    public var agent: String?
    /// When the agent took the dispatched run, and when it said how it went.
    public var claimedAt: Int64?
    public var reportedAt: Int64?
    /// The alert's value when it fired (handed to a dispatched run's environment).
    public var value: Double?
    public init(time: Int64, action: String, alert: String, argv: [String], dryRun: Bool, status: String, millis: Int64, output: String) {
        (self.time, self.action, self.alert, self.argv, self.dryRun, self.status, self.millis, self.output) = (time, action, alert, argv, dryRun, status, millis, output)
    }

    enum CodingKeys: String, CodingKey {
        case id, time, action, alert, argv, dryRun, status, millis, output, cleared, checkedAt, agent, claimedAt, reportedAt, value
    }
}

/// What an agent says of a dispatched run it was handed.
public struct ActionRunReport: Sendable, Codable, Equatable {
    public var status: String
    public var millis: Int64
    public var output: String
    /// What the agent ran (its own allow-list's argv); empty when it refused.
    public var argv: [String]
    public var dryRun: Bool
    public init(status: String, millis: Int64, output: String, argv: [String], dryRun: Bool) {
        (self.status, self.millis, self.output, self.argv, self.dryRun) = (status, millis, output, argv, dryRun)
    }
}

extension TwinStore {
    public func recordDelivery(_ d: DeliveryRecord) throws {
        try database.write { db in
            try db.execute("INSERT INTO alert_deliveries(t, channel, alerts, ok, attempts, error) VALUES (?, ?, ?, ?, ?, ?)",
                           [d.time, d.channel, d.alerts, d.ok, d.attempts, d.error])
        }
    }

    public func deliveries(from: Int64, to: Int64, limit: Int = 1000) throws -> [DeliveryRecord] {
        try database.read { db in
            try db.rows("SELECT t, channel, alerts, ok, attempts, error FROM alert_deliveries WHERE t >= ? AND t <= ? ORDER BY t, id LIMIT ?", [from, to, limit]).map {
                DeliveryRecord(time: try $0.integer(0), channel: try $0.text(1), alerts: Int(try $0.integer(2)), ok: try $0.bool(3),
                               attempts: Int(try $0.integer(4)), error: $0[5].string)
            }
        }
    }

    /// Stores an action run; returns its id (to record later whether the alert cleared).
    @discardableResult
    public func recordActionRun(_ r: ActionRunRecord) throws -> Int64 {
        try database.write { db in
            try db.value("INSERT INTO action_runs(t, action, alert, argv, dry_run, status, millis, output, agent, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                         [r.time, r.action, r.alert, String(decoding: try JSONEncoder().encode(r.argv), as: UTF8.self), r.dryRun, r.status, r.millis, r.output,
                          r.agent, r.value])?.int64 ?? 0
        }
    }

    /// Hands `agent` the runs dispatched to it and not yet taken, oldest first, marking them taken at `now`;
    /// runs that waited longer than `expireAfter` ms are marked expired instead (an agent back after an
    /// outage does not act on a stale alert). Each run is handed out once.
    public func claimDispatchedRuns(agent: String, now: Int64, expireAfter: Int64, limit: Int = 32) throws -> [ActionRunRecord] {
        try database.write { db in
            try db.execute("""
                UPDATE action_runs SET claimed_at = ?, reported_at = ?, status = ? WHERE agent = ? AND claimed_at IS NULL AND t < ?
                """, [now, now, "expired: agent \(agent) did not ask for it within \(expireAfter / 1000) s", agent, now - expireAfter])
            let ids = try db.rows("SELECT id FROM action_runs WHERE agent = ? AND claimed_at IS NULL ORDER BY t, id LIMIT ?", [agent, limit]).map { try $0.integer(0) }
            guard !ids.isEmpty else { return [] }
            let list = ids.map(String.init).joined(separator: ",")
            try db.execute("UPDATE action_runs SET claimed_at = ?, status = ? WHERE id IN (\(list))", [now, "sent to agent \(agent)"])
            return try db.rows("SELECT \(Self.actionRunColumns) FROM action_runs WHERE id IN (\(list)) ORDER BY t, id", []).map(Self.actionRun)
        }
    }

    /// Records what `agent` said of dispatched run `id`; false when there is no such run handed to that
    /// agent and still waiting for its report (another agent's, or reported already).
    public func reportDispatchedRun(id: Int64, agent: String, report r: ActionRunReport, at now: Int64) throws -> Bool {
        try database.write { db in
            try db.execute("""
                UPDATE action_runs SET status = ?, millis = ?, output = ?, argv = ?, dry_run = ?, reported_at = ?
                WHERE id = ? AND agent = ? AND claimed_at IS NOT NULL AND reported_at IS NULL
                """, ["agent \(agent): \(r.status)", r.millis, r.output, String(decoding: try JSONEncoder().encode(r.argv), as: UTF8.self), r.dryRun, now,
                      id, agent]) == 1
        }
    }

    /// Action run `id`, if there is one.
    public func actionRun(id: Int64) throws -> ActionRunRecord? {
        try database.read { db in try db.rows("SELECT \(Self.actionRunColumns) FROM action_runs WHERE id = ?", [id]).first.map(Self.actionRun) }
    }

    /// Whether runs are waiting for `agent` to take them.
    public func hasDispatchedRuns(agent: String) throws -> Bool {
        try database.read { db in
            try db.value("SELECT 1 FROM action_runs WHERE agent = ? AND claimed_at IS NULL LIMIT 1", [agent]) != nil
        }
    }

    /// The columns ``actionRun(_:)`` reads, in its order.
    private static let actionRunColumns = "id, t, action, alert, argv, dry_run, status, millis, output, cleared, checked_at, agent, claimed_at, reported_at, value"

    private static func actionRun(_ row: SQLRow) throws -> ActionRunRecord {
        var r = ActionRunRecord(time: try row.integer(1), action: try row.text(2), alert: try row.text(3),
                                argv: (try? JSONDecoder().decode([String].self, from: Data(try row.text(4).utf8))) ?? [],
                                dryRun: try row.bool(5), status: try row.text(6), millis: try row.integer(7), output: try row.text(8))
        r.id = try row.integer(0)
        r.cleared = row[9].int64.map { $0 != 0 }
        r.checkedAt = row[10].int64
        r.agent = row[11].string
        r.claimedAt = row[12].int64
        r.reportedAt = row[13].int64
        r.value = row[14].double
        return r
    }

    /// Records whether the alert of action run `id` had cleared when checked at `at`.
    public func recordActionOutcome(id: Int64, cleared: Bool, at: Int64) throws {
        try database.write { db in
            try db.execute("UPDATE action_runs SET cleared = ?, checked_at = ? WHERE id = ?", [cleared, at, id])
        }
    }

    public func actionRuns(from: Int64, to: Int64, limit: Int = 1000) throws -> [ActionRunRecord] {
        try database.read { db in
            try db.rows("SELECT \(Self.actionRunColumns) FROM action_runs WHERE t >= ? AND t <= ? ORDER BY t, id LIMIT ?", [from, to, limit]).map(Self.actionRun)
        }
    }
}

/// A silence: alerts whose labels match every matcher are neither notified nor remediated from `starts` to
/// `ends`. Matchers are `name=value`, `name!=value`, `name=~regex`, `name!~regex` (PromQL's).
public struct SilenceRecord: Sendable, Codable, Equatable {
    public var id: Int64
    public var created: Int64
    public var starts: Int64
    public var ends: Int64
    public var matchers: [String]
    public var comment: String
    public var author: String
    public init(id: Int64 = 0, created: Int64, starts: Int64, ends: Int64, matchers: [String], comment: String, author: String) {
        (self.id, self.created, self.starts, self.ends, self.matchers, self.comment, self.author) = (id, created, starts, ends, matchers, comment, author)
    }
    public func isActive(at t: Int64) -> Bool { starts <= t && t < ends }
}

extension TwinStore {
    @discardableResult
    public func insertSilence(_ s: SilenceRecord) throws -> Int64 {
        try database.write { db in
            try db.value("INSERT INTO silences(created, starts, ends, matchers, comment, author) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                         [s.created, s.starts, s.ends, String(decoding: try JSONEncoder().encode(s.matchers), as: UTF8.self), s.comment, s.author])?.int64 ?? 0
        }
    }

    /// Ends silence `id` at `at` (when it has not ended yet); false when there is no such active silence.
    public func expireSilence(id: Int64, at: Int64) throws -> Bool {
        try database.write { db in
            try db.execute("UPDATE silences SET ends = ? WHERE id = ? AND ends > ?", [at, id, at]) == 1
        }
    }

    /// Silences that end after `after` (all by default), newest first.
    public func silences(endingAfter after: Int64 = .min) throws -> [SilenceRecord] {
        try database.read { db in
            try db.rows("SELECT id, created, starts, ends, matchers, comment, author FROM silences WHERE ends > ? ORDER BY id DESC", [after]).map { r in
                SilenceRecord(id: try r.integer(0), created: try r.integer(1), starts: try r.integer(2), ends: try r.integer(3),
                              matchers: (try? JSONDecoder().decode([String].self, from: Data(try r.text(4).utf8))) ?? [],
                              comment: try r.text(5), author: try r.text(6))
            }
        }
    }
}
