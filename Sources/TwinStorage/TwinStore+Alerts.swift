import Foundation
import GRDB
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
    /// Stores alert state changes, in one transaction.
    public func recordAlerts(_ records: [AlertRecord]) throws {
        guard !records.isEmpty else { return }
        try pool.write { db in
            let insert = try db.cachedStatement(sql: "INSERT INTO events(t, type, kind, key, detail) VALUES (?, 'alert', NULL, ?, ?)")
            for r in records {
                try insert.execute(arguments: [r.time, r.key, String(decoding: try AlertRecord.encoder.encode(r), as: UTF8.self)])
            }
        }
    }

    /// Alert state changes in `[from, to]`, oldest first, at most `limit`.
    public func alertHistory(from: Int64, to: Int64, limit: Int = 10_000) throws -> [AlertRecord] {
        try pool.read { db in
            try String.fetchAll(db, sql: "SELECT detail FROM events WHERE type = 'alert' AND t >= ? AND t <= ? ORDER BY t, id LIMIT ?",
                                arguments: [from, to, limit]).compactMap(AlertRecord.decode)
        }
    }

    /// The alerts pending or firing at `at`: each alert's latest change at or before `at`, where that
    /// change left it active. Ordered by rule, then labels.
    public func activeAlerts(at: Int64) throws -> [AlertRecord] {
        try pool.read { db in
            let rows = try String.fetchAll(db, sql: """
                SELECT detail FROM events WHERE id IN (
                    SELECT (SELECT id FROM events x WHERE x.type = 'alert' AND x.key = k.key AND x.t <= ? ORDER BY x.t DESC, x.id DESC LIMIT 1)
                    FROM (SELECT DISTINCT key FROM events WHERE type = 'alert') k)
                """, arguments: [at])
            return rows.compactMap(AlertRecord.decode).filter(\.isActive).sorted { ($0.rule, $0.key) < ($1.rule, $1.key) }
        }
    }
}
