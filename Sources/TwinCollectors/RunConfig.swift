import Foundation
import TwinCore

/// The optional JSON configuration file of `hosttwin run` (`--config FILE`); command-line flags win.
///
/// ```json
/// { "listen": "127.0.0.1:9977", "interval": "1s", "data_dir": "/var/lib/hosttwin",
///   "backup_paths": ["/var/backups/db"], "redact_words": ["dsn"],
///   "watch_paths": ["/etc", "/srv/app/config.yml"], "suid_paths": ["/usr/bin", "/tmp"],
///   "collectors": { "packages": { "interval": "5m" }, "thermal": { "enabled": false } },
///   "retention": { "raw": "7d", "1m": "90d", "1h": "2y", "state": "90d" }, "process_series_min_age": "10s" }
/// ```
public struct RunConfig: Decodable, Sendable {
    public struct CollectorSetting: Decodable, Sendable {
        public var enabled: Bool?
        public var interval: String?
    }
    public var listen: String?
    public var interval: String?
    public var dataDir: String?
    public var backupPaths: [String]?
    /// Paths whose configuration history the `files` collector keeps (default `/etc`).
    public var watchPaths: [String]?
    /// Trees scanned for SUID files (default: program directories and world-writable places).
    public var suidPaths: [String]?
    public var redactWords: [String]?
    public var collectors: [String: CollectorSetting]?
    public var retention: Retention?
    public var headWindow: String?
    public var processSeriesMinAge: String?
    /// The textfile collector's directory (`*.prom` files).
    public var textfileDirectory: String?
    /// Rule files evaluated besides (or, with `default_rules: false`, instead of) the built-in rules.
    public var rules: [String]?
    public var defaultRules: Bool?
    /// The compliance pack (`hosttwin compliance`); off unless true.
    public var compliance: Bool?
    /// The alerting configuration file (notifications, remediation actions).
    public var alerting: String?

    /// `"retention": {"raw": "7d", "1m": "90d", "1h": "2y", "state": "90d"}`
    public struct Retention: Decodable, Sendable {
        public var raw: String?
        public var minute: String?
        public var hour: String?
        public var state: String?
        enum CodingKeys: String, CodingKey { case raw, minute = "1m", hour = "1h", state }
    }

    enum CodingKeys: String, CodingKey {
        case listen, interval, dataDir = "data_dir", backupPaths = "backup_paths", watchPaths = "watch_paths", suidPaths = "suid_paths", redactWords = "redact_words", collectors, retention
        case headWindow = "head_window", processSeriesMinAge = "process_series_min_age", textfileDirectory = "textfile_directory"
        case rules, defaultRules = "default_rules", compliance, alerting
    }

    /// Reads and decodes the file at `path`.
    public static func load(_ path: String) throws -> RunConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TwinError.unavailable("cannot read config file \(path)")
        }
        return try decode(data, file: path)
    }

    /// Decodes a configuration; errors name `file` and say what is wrong where.
    public static func decode(_ data: Data, file path: String) throws -> RunConfig {
        do { return try JSONDecoder().decode(RunConfig.self, from: data) } catch let DecodingError.dataCorrupted(ctx) {
            throw TwinError.badInput("config \(path): not valid JSON (\(ctx.debugDescription))")
        } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.valueNotFound(_, ctx) {
            throw TwinError.badInput("config \(path): wrong type at \(ctx.codingPath.map(\.stringValue).joined(separator: ".")): \(ctx.debugDescription)")
        } catch {
            throw TwinError.badInput("config \(path): \(error)")
        }
    }

    /// The collector selection this file describes.
    public func selection() throws -> CollectorSelection {
        var s = CollectorSelection()
        for (name, c) in collectors ?? [:] {
            if let e = c.enabled { s.enabled[name] = e }
            if let i = c.interval { s.intervals[name] = try TwinTime.parseDuration(i) }
        }
        try s.validate()
        return s
    }
}
