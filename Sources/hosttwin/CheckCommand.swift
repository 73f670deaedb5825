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
        try store.embeddedOnly("check", "reads the embedded store's files; check a PostgreSQL database with its own tools (pg_amcheck)")
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
