import ArgumentParser
import Foundation
import TwinAnalytics
import TwinCore
import TwinQuery
import TwinStorage

/// `hosttwin forecast`: where series are heading — a PromQL expression over the store, or a CSV.
struct ForecastCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forecast",
        abstract: "Forecast stored series (a PromQL expression) or a timestamp,value CSV, with 80 % and 95 % intervals.",
        discussion: """
        hosttwin forecast EXPR --horizon 24h [--history 7d] [--below X]: the expression is read over --history (about \
        2,000 points; rollup tiers serve long histories), each series forecast --horizon ahead; --below X adds when \
        the series is expected to fall to X (expected, earliest and latest of the 95 % band, or "not within horizon").

        hosttwin forecast --csv FILE [--train-rows N] --horizon STEPS: fits on the first N rows and writes \
        `timestamp,forecast,lo80,hi80,lo95,hi95` for the next STEPS steps.

        The model (seasonal naive, robust linear trend, Holt / Holt-Winters with damped trend and daily seasonality \
        when two days of history exist) is chosen automatically on each series' own recent history.
        """
    )
    @Argument(help: ArgumentHelp("A PromQL expression (not with --csv).", valueName: "EXPR")) var expr: String?
    @Option(help: ArgumentHelp("A CSV to forecast instead of stored series.", valueName: "FILE")) var csv: String?
    @Option(help: ArgumentHelp("Rows of the CSV to fit on (default: all).", valueName: "N")) var trainRows: Int?
    @Option(help: ArgumentHelp("How far ahead: a duration for EXPR (24h), a number of steps for --csv.", valueName: "HORIZON")) var horizon: String
    @Option(help: ArgumentHelp("History to fit on (EXPR only).", valueName: "DURATION")) var history = "7d"
    @Option(help: ArgumentHelp("Report when each series falls to this value (EXPR only).", valueName: "X")) var below: Double?
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        if let csv { try forecastCSV(csv); return }
        guard let expr else { throw CLIError("give a PromQL expression, or --csv FILE") }
        let parsed: Expr
        do { parsed = try PromQLParser.parse(expr) } catch { throw CLIError("\(error)") }
        let engine = PromQLEngine(source: StoreSampleSource(store: try store.openForReading()))
        let forecasts: [SeriesForecast]
        do {
            forecasts = try QueryForecaster.forecast(engine: engine, expr: parsed, now: TwinTime.nowMillis(), history: try TwinTime.parseDuration(history),
                                                     horizon: try TwinTime.parseDuration(horizon), exhaustionBelow: below)
        } catch let e as PromQLError { throw CLIError("\(e)") } catch let e as TwinError { throw CLIError("\(e)") }
        if output.json { try printJSON(forecasts.map(SeriesForecastJSON.init)); return }
        if forecasts.isEmpty { print("(no series: nothing stored for \(expr) in the last \(history))") }
        for f in forecasts {
            print("\(QueryCommand.name(f.labels))  now \(PromNumber.format(f.last.value))  model: \(f.model)")
            for i in Forecasting.milestones(f.points.count) {
                let p = f.points[i]
                print("  \(TwinTime.rfc3339(f.last.t + f.step * Int64(i + 1)))  \(PromNumber.format(p.mean))  80 % [\(PromNumber.format(p.lo80)), \(PromNumber.format(p.hi80))]  95 % [\(PromNumber.format(p.lo95)), \(PromNumber.format(p.hi95))]")
            }
            if let e = f.exhaustion { print("  reaches \(PromNumber.format(e.threshold)): \(Forecasting.describe(e, now: f.last.t))") }
        }
    }

    private func forecastCSV(_ path: String) throws {
        guard expr == nil else { throw CLIError("give either EXPR or --csv, not both") }
        guard let steps = Int(horizon), steps > 0, steps <= 1_000_000 else { throw CLIError("with --csv, --horizon is a number of steps (1 to 1,000,000)") }
        let rows = try Forecasting.readCSV(path)
        let n = trainRows ?? rows.t.count
        guard n >= 3, n <= rows.t.count else { throw CLIError("--train-rows must be between 3 and the file's \(rows.t.count) rows") }
        let step = Forecasting.step(rows.t[..<n])
        let (model, points) = Forecaster.forecast(Array(rows.v[..<n]), horizon: steps, period: Forecasting.dailyPeriod(step: step))
        FileHandle.standardError.write(Data("model: \(model)\n".utf8))
        var out = "timestamp,forecast,lo80,hi80,lo95,hi95\n"
        let fmt = Forecasting.timeFormatter()
        for (h, p) in points.enumerated() {
            let t = rows.t[n - 1] + step * Int64(h + 1)
            out += "\(fmt.string(from: Date(timeIntervalSince1970: Double(t)))),\(p.mean),\(p.lo80),\(p.hi80),\(p.lo95),\(p.hi95)\n"
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}
