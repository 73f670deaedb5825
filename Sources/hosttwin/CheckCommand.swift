import ArgumentParser
import Foundation
import TwinStorage

/// `hosttwin check`: verify every part of a data directory.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify a data directory: SQLite integrity, every chunk, rollup block and log segment.",
        discussion: "Reads everything and writes nothing; safe while `hosttwin run` is running. Exit status 1 when a problem is found; `hosttwin repair` salvages what is intact."
    )
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let report = try StoreDoctor.check(dataDir: store.resolvedDataDir)
        if output.json { try printJSON(report) } else { printReport(report) }
        if !report.ok { throw ExitCode(1) }
    }
}

func printReport(_ r: CheckReport) {
    print("\(r.dataDir): \(r.ok ? "OK" : "\(r.problems.count) problem(s)")\(r.writerRunning ? " (a writer is running)" : "")")
    print("  \(r.chunks) chunks holding \(r.samples) samples, \(r.rollupBlocks) rollup blocks, \(r.versions) state versions, \(r.logSegments) log segments holding \(r.logSamples) samples")
    for p in r.problems { print("  \(p.file): \(p.item): \(p.detail)") }
}

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
        let report = try StoreDoctor.repair(dataDir: store.resolvedDataDir)
        if output.json { try printJSON(report) } else {
            for a in report.actions { print(a) }
            printReport(report.check)
        }
        if !report.check.ok { throw ExitCode(1) }
    }
}
