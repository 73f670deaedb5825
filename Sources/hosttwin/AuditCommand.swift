import ArgumentParser
import Foundation
import TwinCore
import TwinSecurity

/// `hosttwin audit show|verify`: the hash-chained audit log of a data directory's servers.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show or verify the audit log (every API request and admin action).",
        subcommands: [Show.self, Verify.self]
    )

    /// `--audit-dir` and `--audit-anchor`, defaulting to the data directory's.
    struct Location: ParsableArguments {
        @OptionGroup var store: StoreOptions
        @Option(name: .customLong("audit-dir"), help: ArgumentHelp("The audit log's directory (default DATA_DIR/audit).", valueName: "DIR")) var auditDir: String?
        @Option(name: .customLong("audit-anchor"), help: ArgumentHelp("The anchor file the server wrote (default AUDIT_DIR/anchors).", valueName: "FILE")) var auditAnchor: String?
        var directory: String { auditDir ?? store.resolvedDataDir + "/audit" }

        /// The log: the directory's file, or the `--chain` (a hub's name) of the `--store` database.
        func open(chain: String) throws -> AuditLog {
            let table = try StoreOptions.database(store.storeURL).map { AuditLog.Table(database: $0, chain: chain) }
            return try AuditLog(directory: directory, anchorPath: auditAnchor, table: table)
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print audit records, oldest first.")
        @OptionGroup var location: Location
        @Option(help: ArgumentHelp("Only records at or after TIME (default: all).", valueName: "TIME")) var since: String?
        @Option(help: ArgumentHelp("With --store: the hub whose records to show (its --hub-name).", valueName: "NAME")) var hubName = "main"
        @OptionGroup var output: OutputOptions

        func run() throws {
            let from = try since.map { try parseTime($0, "--since") } ?? .min
            let records = location.store.storeURL == nil ? try AuditLog.read(directory: location.directory, since: from)
                                                         : try location.open(chain: hubName).records(since: from)
            if output.json { try printJSON(records); return }
            printTable(["SEQ", "TIME", "KIND", "ACTION", "ROLE", "TOKEN", "SOURCE", "STATUS", "DETAIL"], records.map {
                ["\($0.seq)", TwinTime.rfc3339($0.t), $0.kind, $0.action, $0.role ?? "-", $0.token ?? "-", $0.source ?? "", $0.status.map(String.init) ?? "", $0.detail ?? ""]
            })
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the hash chain and its anchors; exit 1 at the first broken record.",
            discussion: "Finds an edited, inserted or deleted record anywhere, and records cut from the end up to the newest anchor (written every minute)."
        )
        @OptionGroup var location: Location
        @Option(help: ArgumentHelp("With --store: the hub whose chain to check (its --hub-name).", valueName: "NAME")) var hubName = "main"
        @OptionGroup var output: OutputOptions

        func run() throws {
            let verdict = location.store.storeURL == nil ? try AuditLog.verify(directory: location.directory, anchorPath: location.auditAnchor)
                                                         : try location.open(chain: hubName).verify()
            let place = location.store.storeURL == nil ? location.directory : "audit_log, chain \(hubName)"
            if output.json { try printJSON(verdict) } else if let problem = verdict.problem {
                print("\(place): BROKEN after \(verdict.records) good record(s): \(problem)")
            } else {
                print("\(place): OK, \(verdict.records) records, \(verdict.anchors) anchors")
            }
            if !verdict.ok { throw ExitCode(1) }
        }
    }
}
