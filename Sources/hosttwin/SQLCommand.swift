import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import TwinCore
import TwinQuery
import TwinServer
import TwinStorage

/// `hosttwin sql`: read-only SQL over the state views as of a time.
struct SQLCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sql",
        abstract: "Read-only SQL over the host's state as of a time.",
        discussion: """
        Views: \(StateSQL.viewNames.joined(separator: ", ")). Each has `key`, the kind's attributes as columns, and \
        `valid_from`/`valid_to` (RFC 3339). Only SELECT is allowed; a query may run 2 s and return 10,000 rows.

        Example:
          hosttwin sql "select name, user, rss_bytes from processes order by rss_bytes desc limit 5" --at -2h
        """
    )

    @Argument(help: ArgumentHelp("One SELECT statement.", valueName: "SQL")) var query: String
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @Option(parsing: .unconditional, help: ArgumentHelp("The time the views show.", valueName: "TIME")) var at: String = "now"

    func run() throws {
        let t = try parseTime(at, "--at")
        let result: StateSQL.Result
        do { result = try StateSQL(store: try store.openForReading()).run(query, at: t) } catch let e as StateSQL.Refusal { throw CLIError(e.message) }
        if output.json {
            struct Body: Encodable { var at: String; var columns: [String]; var rows: [[AttributeValue]] }
            try printJSON(Body(at: TwinTime.rfc3339(t), columns: result.columns, rows: result.rows))
            return
        }
        printTable(result.columns.map { $0.uppercased() }, result.rows.map { $0.map(\.description) })
    }
}
