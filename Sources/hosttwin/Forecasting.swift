import ArgumentParser
import Foundation
import TwinAnalytics
import TwinCore
import TwinQuery
import TwinStorage

/// Helpers shared by the forecast commands.
enum Forecasting {
    /// A few indices to print of `n` forecast steps: about every eighth, and the last.
    static func milestones(_ n: Int) -> [Int] {
        guard n > 0 else { return [] }
        let every = max(1, n / 8)
        return Array(Set(stride(from: every - 1, to: n, by: every)).union([n - 1])).sorted()
    }

    /// "in 3h 20m (2026-11-30T04:00:00Z; 95 %: 1h 10m to 9h)" or "not within horizon".
    static func describe(_ e: Exhaustion, now: Int64) -> String {
        guard let expected = e.expected ?? e.earliest else { return "not within horizon" }
        let range = "95 %: \(e.earliest.map { formatDuration($0 - now) } ?? "-") to \(e.latest.map { formatDuration($0 - now) } ?? "beyond the horizon")"
        return "\(e.expected == nil ? "possibly " : "")in \(formatDuration(expected - now)) (\(TwinTime.rfc3339(expected)); \(range))"
    }

    /// The median spacing of timestamps (seconds), at least 1.
    static func step(_ t: ArraySlice<Int64>) -> Int64 {
        guard t.count > 1 else { return 1 }
        let d = zip(t.dropFirst(), t).map { $0 - $1 }.sorted()
        return max(1, d[d.count / 2])
    }

    /// A `timestamp,value` CSV (NAB's format), its errors as the CLI's.
    static func readCSV(_ path: String) throws -> (t: [Int64], v: [Double]) {
        do { return try NABCorpus.readCSV(path) } catch { throw CLIError("\(error)") }
    }

    /// Steps in a day at `step` seconds.
    static func dailyPeriod(step: Int64) -> Int { Int(86_400 / max(step, 1)) }

    static func timeFormatter() -> ISO8601DateFormatter {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withFullDate, .withSpaceBetweenDateAndTime, .withTime, .withColonSeparatorInTime]
        f.timeZone = TimeZone(identifier: "UTC")
        return f
    }
}
