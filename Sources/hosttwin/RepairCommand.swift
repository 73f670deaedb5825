import ArgumentParser
import Foundation
import TwinStorage

/// `hosttwin repair`: salvage what is intact in a damaged data directory.
struct RepairCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repair",
        abstract: "Salvage a damaged data directory, keeping every intact sample and version.",
        discussion: """
        Damaged chunks and rollup blocks move to a `quarantine` table (their bytes are kept); a damaged log segment \
        is cut at its last good record (the original kept beside it as .damaged); a database SQLite reports damaged \
        is rebuilt from every readable row (the original kept as twin.db.damaged-TIME). Stop `hosttwin run` first.
        """
    )
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try store.embeddedOnly("repair", "mends the embedded store's files; PostgreSQL has its own recovery")
        let report = try StoreDoctor.repair(dataDir: store.resolvedDataDir)
        if output.json { try printJSON(report) } else {
            for a in report.actions { print(a) }
            printReport(report.check)
        }
        if !report.check.ok { throw ExitCode(1) }
    }
}
