import ArgumentParser
import Foundation
import TwinAnalytics
import TwinCore
import TwinQuery
import TwinStorage

/// `hosttwin detect FILE.csv`: the streaming anomaly detector over a `timestamp,value` CSV, row by row.
struct DetectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Score a timestamp,value CSV (NAB's format) row by row with the streaming anomaly detector.",
        discussion: "Writes `timestamp,value,anomaly_score,alert` (alert = 1 at the detector's fixed threshold). Each row is scored before the next is read: no look-ahead."
    )
    @Argument(help: ArgumentHelp("The CSV to score (`-` for standard input is not supported).", valueName: "FILE")) var file: String

    func run() throws {
        let rows = try Forecasting.readCSV(file)
        var detector = NoveltyDetector()
        var out = "timestamp,value,anomaly_score,alert\n"
        let formatter = Forecasting.timeFormatter()
        for (t, v) in zip(rows.t, rows.v) {
            let s = detector.score(v, at: t)
            out += "\(formatter.string(from: Date(timeIntervalSince1970: Double(t)))),\(v),\(s),\(s >= NoveltyDetector.alertThreshold ? 1 : 0)\n"
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}
