import Foundation
import TwinCollectors
import TwinCore

/// The optional JSON configuration file of `hosttwin run` (`--config FILE`); command-line flags win.
///
/// ```json
/// { "listen": "127.0.0.1:9977", "interval": "1s", "data_dir": "/var/lib/hosttwin",
///   "backup_paths": ["/var/backups/db"], "redact_words": ["dsn"],
///   "collectors": { "packages": { "interval": "5m" }, "thermal": { "enabled": false } },
///   "retention": { "raw": "7d", "1m": "90d", "1h": "2y", "state": "90d" }, "process_series_min_age": "10s" }
/// ```
struct RunConfig: Decodable {
    struct CollectorSetting: Decodable {
        var enabled: Bool?
        var interval: String?
    }
    var listen: String?
    var interval: String?
    var dataDir: String?
    var backupPaths: [String]?
    var redactWords: [String]?
    var collectors: [String: CollectorSetting]?
    var retention: Retention?
    var headWindow: String?
    var processSeriesMinAge: String?

    /// `"retention": {"raw": "7d", "1m": "90d", "1h": "2y", "state": "90d"}`
    struct Retention: Decodable {
        var raw: String?
        var minute: String?
        var hour: String?
        var state: String?
        enum CodingKeys: String, CodingKey { case raw, minute = "1m", hour = "1h", state }
    }

    enum CodingKeys: String, CodingKey {
        case listen, interval, dataDir = "data_dir", backupPaths = "backup_paths", redactWords = "redact_words", collectors, retention
        case headWindow = "head_window", processSeriesMinAge = "process_series_min_age"
    }

    static func load(_ path: String) throws -> RunConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TwinError.unavailable("cannot read config file \(path)")
        }
        do { return try JSONDecoder().decode(RunConfig.self, from: data) } catch let DecodingError.dataCorrupted(ctx) {
            throw TwinError.badInput("config \(path): not valid JSON (\(ctx.debugDescription))")
        } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.valueNotFound(_, ctx) {
            throw TwinError.badInput("config \(path): wrong type at \(ctx.codingPath.map(\.stringValue).joined(separator: ".")): \(ctx.debugDescription)")
        } catch {
            throw TwinError.badInput("config \(path): \(error)")
        }
    }

    /// The collector selection this file describes.
    func selection() throws -> CollectorSelection {
        var s = CollectorSelection()
        for (name, c) in collectors ?? [:] {
            if let e = c.enabled { s.enabled[name] = e }
            if let i = c.interval { s.intervals[name] = try TwinTime.parseDuration(i) }
        }
        try s.validate()
        return s
    }
}
