import ArgumentParser
import Foundation
import TwinCore
import TwinStorage

/// `hosttwin alerts`: the alerts pending and firing now or as of a time; with `--all`, every change.
struct AlertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts",
        abstract: "The alerts pending or firing now (or --at TIME); with --all, every alert change in a window.",
        discussion: "Alert changes are stored in the twin as events (pending, firing, resolved, cleared), so any past moment can be asked: `hosttwin alerts --at -1d`, or `hosttwin alerts --all --from -7d` for what fired last week. With --url, asks a running server's /api/v1/alerts."
    )
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var remote: RemoteOptions
    @Option(parsing: .unconditional, help: ArgumentHelp("The alerts as of this time.", valueName: "TIME")) var at: String = "now"
    @Flag(help: "Every alert change in --from..--to instead of the alerts active at one time.") var all = false
    @Option(parsing: .unconditional, help: ArgumentHelp("With --all: start time.", valueName: "TIME")) var from: String = "-24h"
    @Option(parsing: .unconditional, help: ArgumentHelp("With --all: end time.", valueName: "TIME")) var to: String = "now"

    func run() throws {
        if all {
            let a = try parseTime(from, "--from"), b = try parseTime(to, "--to")
            let history = try store.openForReading().alertHistory(from: a, to: b)
            if output.json { try printJSON(history); return }
            if history.isEmpty { print("no alert changed state between \(TwinTime.rfc3339(a)) and \(TwinTime.rfc3339(b))"); return }
            printTable(["TIME", "STATE", "ALERT", "LABELS", "SUMMARY"], history.map { r in
                [TwinTime.rfc3339(r.time), r.state, r.rule, Self.labelText(r.labels), r.annotations["summary"] ?? ""]
            })
            return
        }
        let t = try parseTime(at, "--at")
        let active: [AlertRecord]
        if let client = try remote.client() {
            struct Body: Decodable {
                struct Data: Decodable { var alerts: [A] }
                struct A: Decodable { var labels: [String: String]; var annotations: [String: String]; var state: String; var activeAt: String; var value: String; var group: String? }
                var data: Data
            }
            let path = "/api/v1/alerts" + (at == "now" ? "" : "?at=\(t / 1000).\(String(format: "%03d", t % 1000))")
            active = try JSONDecoder().decode(Body.self, from: try RemoteOptions.fetch(client, path)).data.alerts.map { a in
                AlertRecord(time: 0, state: a.state, group: a.group ?? "", rule: a.labels["alertname"] ?? "", labels: a.labels, annotations: a.annotations,
                            value: Double(a.value) ?? .nan, activeAt: TwinTime.parseRFC3339(a.activeAt) ?? 0, firedAt: nil)
            }
        } else {
            active = try store.openForReading().activeAlerts(at: t)
        }
        if output.json { try printJSON(active); return }
        if active.isEmpty { print("no alert pending or firing at \(TwinTime.rfc3339(t))"); return }
        printTable(["STATE", "ALERT", "SINCE", "VALUE", "LABELS", "SUMMARY"], active.map { r in
            [r.state, r.rule, TwinTime.rfc3339(r.activeAt), String(format: "%g", r.value), Self.labelText(r.labels), r.annotations["summary"] ?? ""]
        })
    }

    /// The labels other than `alertname`, as `a=b,c=d`.
    static func labelText(_ l: [String: String]) -> String {
        l.filter { $0.key != "alertname" }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }
}
