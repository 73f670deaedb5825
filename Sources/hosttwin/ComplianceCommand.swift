import ArgumentParser
import Foundation
import TwinCore
import TwinRules
import TwinStorage

/// `hosttwin compliance`: the compliance pack's checks, pass or fail per host, with evidence.
struct ComplianceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compliance",
        abstract: "Compliance checks per host as of a time: pass or fail, the evidence, and failing since when.",
        discussion: """
        Checks: SSH root login and password authentication (sshd_config as sshd reads it, Include files too), \
        world-writable files under the watched paths, set-user-ID files no installed package owns, and ports \
        listening beyond loopback that are not on the allow-list (22), packages with pending security updates \
        (apt's security lists). Each is evaluated on the twin's state as of \
        --at; "failing since" comes from the compliance pack's alerts, recorded while a twin ran with \
        `--compliance` (or "compliance": true). Exit status 1 when a check fails.
        """
    )

    @OptionGroup var store: StoreOptions
    @OptionGroup var at: AtOptions
    @Option(name: .customLong("rules"), help: ArgumentHelp("Take the checks and allow-lists from this rule file (your copy of `hosttwin rules show --compliance`).", valueName: "FILE"))
    var rulesFile: String?
    @OptionGroup var output: OutputOptions

    func run() throws {
        let t = try parseTime(at.at, "--at")
        let pack: RuleFile
        do { pack = try rulesFile.map { try RuleFile.load(path: $0) } ?? RuleFile.compliance() } catch let e as RuleFileErrors {
            throw CLIError("rules refused:\n" + e.errors.map { "  \($0)" }.joined(separator: "\n"))
        }
        let checks = ComplianceCheck.checks(of: pack)
        guard !checks.isEmpty else { throw CLIError("\(rulesFile ?? "the pack") has no compliance conditions") }
        let s = try store.openForReading()
        // A hub's hosts are its `host` entities' names; a single host's store has no host attribute.
        let hostNames = Set(try s.state(at: t, kinds: [.host]).compactMap { $0.attributes["host"]?.description })
        var hosts: [String]? = hostNames.isEmpty ? nil : hostNames.sorted()
        if let only = at.host {
            guard hosts?.contains(only) == true else { throw CLIError("no host \(only) at \(TwinTime.rfc3339(t)) in this store") }
            hosts = [only]
        }
        let results = try ComplianceCheck.report(checks, state: { try s.state(at: t, kinds: $0.kinds) }, alerts: try s.activeAlerts(at: t), hosts: hosts)
        if output.json {
            try printJSON(results)
        } else {
            var rows: [[String]] = []
            for r in results {
                let head = (hosts == nil ? [] : [r.host ?? ""]) + [r.check]
                if r.passed { rows.append(head + ["pass", "-", "-"]); continue }
                for f in r.findings {
                    let what = ["path", "port", "setting", "package"].compactMap { f[$0] }.joined(separator: " ")
                    rows.append(head + ["FAIL", r.failingSince.map(TwinTime.rfc3339) ?? "unknown", [what, f["evidence"] ?? ""].filter { !$0.isEmpty }.joined(separator: ": ")])
                }
            }
            printTable((hosts == nil ? [] : ["HOST"]) + ["CHECK", "RESULT", "FAILING SINCE", "EVIDENCE"], rows)
            if results.contains(where: { !$0.passed && $0.failingSince == nil }) {
                print("(failing since: known where a twin ran with --compliance; `unknown` otherwise)")
            }
        }
        if results.contains(where: { !$0.passed }) { throw ExitCode(1) }
    }
}
