import ArgumentParser
import Foundation
import TwinCore
import TwinServer
import TwinStorage

/// `hosttwin actions list|dispatch`: remediation runs, and an admin's dispatch of an action to a host's agent.
struct ActionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "actions",
        abstract: "Remediation runs (what ran for which alert, how it ended, whether the alert cleared) and dispatches to agents.",
        discussion: "Actions come from the alerting configuration's allow-list (docs/RULES.md). At a hub, an action marked `dispatch: agent` is run by the agent of the alert's host, from the agent's own allow-list (`from_hub: true`).",
        subcommands: [List.self, Dispatch.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The action runs of a window (default the last 24 hours), oldest first.")
        @OptionGroup var store: StoreOptions
        @Option(parsing: .unconditional, help: ArgumentHelp("From (RFC 3339, Unix seconds or -24h).", valueName: "TIME")) var from: String = "-24h"
        @Option(parsing: .unconditional, help: ArgumentHelp("To (default now).", valueName: "TIME")) var to: String = "now"
        @Option(help: ArgumentHelp("Only runs dispatched to this host's agent (a hub).", valueName: "HOST")) var host: String?
        @OptionGroup var output: OutputOptions

        func run() throws {
            let (a, b) = (try parseTime(from, "--from"), try parseTime(to, "--to"))
            guard a <= b else { throw CLIError("--from is after --to") }
            var runs = try store.openForReading().actionRuns(from: a, to: b, limit: 10_000)
            if let host { runs = runs.filter { $0.agent == host } }
            if output.json { try printJSON(runs); return }
            if runs.isEmpty { print("no action runs from \(TwinTime.rfc3339(a)) to \(TwinTime.rfc3339(b))"); return }
            printTable(["TIME", "ACTION", "ALERT", "STATUS", "TOOK", "CLEARED"], runs.map { r in
                [TwinTime.rfc3339(r.time), r.action + (r.dryRun ? " (dry run)" : ""), r.alert, r.status,
                 r.agent != nil && r.reportedAt == nil ? "" : "\(r.millis) ms", r.cleared.map { $0 ? "yes" : "no" } ?? ""]
            })
        }
    }

    struct Dispatch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask a hub to have the agent of a host run an action (admin token); waits for the agent's report.",
            discussion: "The agent runs it only when its own allow-list has the action with `from_hub: true`, within the action's cool-down and hourly cap. The dispatch is recorded in the hub's audit log and action runs.")
        @Argument(help: "The action's name in the agent's allow-list.") var action: String
        @Option(help: ArgumentHelp("The host whose agent runs it.", valueName: "HOST")) var host: String
        @Option(help: "Why (kept with the run).") var comment: String?
        @Option(help: ArgumentHelp("How long to wait for the agent's report (0: do not wait).", valueName: "DURATION")) var wait: String = "30s"
        @Option(help: ArgumentHelp("The hub, http(s)://HOST:PORT.", valueName: "URL")) var url: String
        @OptionGroup var credentials: ClientCredentials
        @OptionGroup var output: OutputOptions

        func run() throws {
            let client = try credentials.client(url: url)
            let waitMs: Int64
            do { waitMs = try TwinTime.parseDuration(wait) } catch { throw CLIError("--wait: \(error)") }
            var form = [("host", host), ("action", action)]
            if let comment { form.append(("comment", comment)) }
            let r: RemoteTwin.Response
            do { r = try client.post("/api/v1/actions/dispatch", form: form) } catch { throw CLIError("\(error)") }
            struct Answer: Decodable { struct Data: Decodable { var id: Int64 }; var data: Data }
            guard r.status == 200, let id = try? JSONDecoder().decode(Answer.self, from: Foundation.Data(r.body)).data.id else {
                let message = (try? JSONSerialization.jsonObject(with: Foundation.Data(r.body))).flatMap { ($0 as? [String: Any])?["error"] as? String } ?? r.text
                throw CLIError("the hub answered HTTP \(r.status): \(message)")
            }
            if !output.json { print("run \(id): \(action) queued for the agent of \(host)") }
            // The hub's record of the run, until the agent reported it or the wait is over.
            var run: ActionRunRecord?
            let deadline = TwinTime.nowMillis() + waitMs
            let window = "from=\(TwinTime.nowMillis() / 1000 - 60)"
            repeat {
                if waitMs > 0 { Thread.sleep(forTimeInterval: 0.25) }
                struct Runs: Decodable { struct Data: Decodable { var runs: [ActionRunRecord] }; var data: Data }
                let body = try RemoteOptions.fetch(client, "/api/v1/twin/actions?\(window)")
                run = try JSONDecoder().decode(Runs.self, from: body).data.runs.first { $0.id == id }
            } while run?.reportedAt == nil && TwinTime.nowMillis() < deadline
            if output.json { try printJSON(run); return }
            guard let run else { return }
            if run.reportedAt == nil {
                print("run \(id): \(run.status) (no report within \(wait))")
            } else {
                print("run \(id): \(run.status) in \(run.millis) ms")
                if !run.output.isEmpty { print(run.output) }
            }
        }
    }
}
