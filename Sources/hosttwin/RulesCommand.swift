import ArgumentParser
import Foundation
import TwinCore
import TwinRules

/// `hosttwin rules check|test|show`: rule files (Prometheus' format with HostTwin's conditions).
struct RulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Check, test and show alerting and recording rules.",
        discussion: "Rule files use Prometheus' format (groups of alert and record rules with expr, for, keep_firing_for, labels and annotations) plus HostTwin's conditions: forecast, anomaly, state, restart_loop and silent. See docs/RULES.md.",
        subcommands: [Check.self, Test.self, Show.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check rule files: every error with its FILE:LINE:COLUMN; exit 1 when any file has one.",
            discussion: "Checks the YAML, every field's name and type, the PromQL of each expression, label names and the templates of labels and annotations (which may only format the alert's own labels and value)."
        )
        @Argument(help: ArgumentHelp("Rule files.", valueName: "FILE")) var files: [String] = []
        @Flag(name: .customLong("default"), help: "Check the built-in rule set.") var builtIn = false
        @Flag(name: .customLong("compliance"), help: "Check the compliance pack.") var compliance = false
        @OptionGroup var output: OutputOptions

        func validate() throws {
            if files.isEmpty && !builtIn && !compliance { throw ValidationError("give rule files, --default for the built-in set or --compliance for the compliance pack") }
        }

        func run() throws {
            struct Result: Encodable { var file: String; var groups: Int; var rules: Int; var errors: [String] }
            var results: [Result] = []
            func check(_ name: String, _ load: () throws -> RuleFile) {
                do {
                    let f = try load()
                    results.append(Result(file: name, groups: f.groups.count, rules: f.rules.count, errors: []))
                } catch let e as RuleFileErrors {
                    results.append(Result(file: name, groups: 0, rules: 0, errors: e.errors.map(\.description)))
                } catch {
                    results.append(Result(file: name, groups: 0, rules: 0, errors: ["\(name): \(error)"]))
                }
            }
            if builtIn { check("<default rules>") { try RuleFile.defaults() } }
            if compliance { check("<compliance pack>") { try RuleFile.compliance() } }
            for f in files { check(f) { try RuleFile.load(path: f) } }
            if output.json { try printJSON(results) } else {
                for r in results {
                    if r.errors.isEmpty { print("\(r.file): SUCCESS: \(r.rules) rules in \(r.groups) groups") } else {
                        print("\(r.file): FAILED: \(r.errors.count) error\(r.errors.count == 1 ? "" : "s")")
                        for e in r.errors { print("  " + e) }
                    }
                }
            }
            if results.contains(where: { !$0.errors.isEmpty }) { throw ExitCode(1) }
        }
    }

    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run rule unit tests written for `promtool test rules` (Prometheus 2.42's format); exit 1 on a failure.",
            discussion: "Input series in promtool's notation (0+10x5, _, stale) at the test's interval; alert_rule_test compares the firing alerts' labels and annotations at eval_time, promql_expr_test an expression's samples. The same files give the same verdicts under promtool (scripts/rules-test.sh runs both)."
        )
        @Argument(help: ArgumentHelp("Test files.", valueName: "FILE")) var files: [String]
        @OptionGroup var output: OutputOptions

        func run() throws {
            let results = files.map { PromtoolTestRunner.run(path: $0) }
            if output.json { try printJSON(results) } else {
                for r in results {
                    print("Unit Testing: \(r.file)")
                    if r.passed { print("  SUCCESS (\(r.tests) test group\(r.tests == 1 ? "" : "s"))") } else {
                        print("  FAILED:")
                        for f in r.failures { print("    " + f.replacingOccurrences(of: "\n", with: "\n    ")) }
                    }
                }
            }
            if results.contains(where: { !$0.passed }) { throw ExitCode(1) }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the built-in rule set or the compliance pack (a starting point for your own file).")
        @Flag(name: .customLong("default"), help: "The built-in rule set (what is printed without a flag).") var builtIn = false
        @Flag(name: .customLong("compliance"), help: "The compliance pack.") var compliance = false

        func validate() throws {
            if builtIn && compliance { throw ValidationError("give --default or --compliance, not both") }
        }

        func run() throws { print(compliance ? RuleFile.complianceText : RuleFile.defaultText, terminator: "") }
    }
}
