import ArgumentParser
import Foundation
import TwinCore
import TwinStorage

/// `hosttwin migrate --from DIR --to URL`: moves an embedded twin's tables into PostgreSQL and checks the copy.
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Copy an embedded store into PostgreSQL (a hub's store), verifying counts and digests.",
        discussion: """
        Seals what the data directory's head log holds, then copies every table into the database (which must \
        hold no HostTwin data yet) in one transaction: a failed migration leaves it as it was. Then each table's \
        rows and digest are read back from both engines and compared, and so is the twin digest of each host \
        (samples and state history read through the store, as `hosttwin digest` computes it). The data \
        directory keeps its keys and its head log's position: serve the migrated store with \
        `hosttwin serve --data-dir DIR --store URL`. Refused while `hosttwin run` or `serve` writes to DIR. \
        Exit status 1 when anything differs.
        """
    )

    @Option(name: .customLong("from"), help: ArgumentHelp("The embedded store's data directory.", valueName: "DIR")) var from: String
    @Option(name: .customLong("to"), help: ArgumentHelp("The PostgreSQL database, e.g. postgres://hosttwin@127.0.0.1:5432/hosttwin.", valueName: "URL")) var to: String
    @OptionGroup var output: OutputOptions
    @Flag(help: "No progress lines on standard error.") var quiet = false

    struct Report: Encodable {
        var tables: [StoreCopy.Table]
        var hosts: [HostDigest]
        var seconds: Double
        var ok: Bool
    }

    struct HostDigest: Encodable {
        /// Nil: the store's own host (series without a `host` label).
        var host: String?
        var source: TwinDigest
        var copy: TwinDigest
        var matches: Bool { source == copy }

        enum CodingKeys: String, CodingKey { case host, source, copy, matches }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(host, forKey: .host)
            try c.encode(source, forKey: .source)
            try c.encode(copy, forKey: .copy)
            try c.encode(matches, forKey: .matches)
        }
    }

    func run() throws {
        let started = Date()
        func say(_ line: String) { if !quiet { FileHandle.standardError.write(Data("hosttwin migrate: \(line)\n".utf8)) } }
        guard FileManager.default.fileExists(atPath: TwinStore.databasePath(from)) else {
            throw CLIError("no HostTwin store in \(from) (missing \(TwinStore.databasePath(from)))")
        }
        let database = try StoreOptions.database(to)!
        let source = try TwinStore.open(dataDir: from)
        let (tables, hosts) = try StoreCopy.whileSealedAndLocked(source) {
            let quarantined = try StoreCopy.quarantinedRows(source)
            if quarantined > 0 { say("\(quarantined) quarantined rows (damaged data `hosttwin repair` set aside) stay behind in \(from)") }
            let destination = try TwinStore.open(dataDir: from, tablesIn: database)
            var lastLine = Date.distantPast
            try StoreCopy.copy(from: source, to: destination) { table, rows in
                guard Date().timeIntervalSince(lastLine) >= 1 else { return }
                lastLine = Date()
                say("copying \(table): \(rows) rows")
            }
            say("copied in \(String(format: "%.1f", Date().timeIntervalSince(started))) s; verifying")
            let tables = try StoreCopy.verify(source: source, destination: destination)
            var hosts: [HostDigest] = []
            let names = Set(try source.seriesCatalog().compactMap { $0.key.labels["host"] })
            for host in [nil] + names.sorted().map(Optional.some) {
                let until = Int64.max / 2
                hosts.append(HostDigest(host: host, source: try TwinDigest.compute(store: source, host: host, until: until),
                                        copy: try TwinDigest.compute(store: destination, host: host, until: until)))
            }
            return (tables, hosts)
        }
        let ok = tables.allSatisfy(\.matches) && hosts.allSatisfy(\.matches)
        let report = Report(tables: tables, hosts: hosts, seconds: Date().timeIntervalSince(started), ok: ok)
        if output.json {
            try printJSON(report)
        } else {
            tableLines(["TABLE", "ROWS", "DIGEST", "COPY"], tables.map { t in
                [t.table, "\(t.rows)", t.digest, t.matches ? "same" : "DIFFERS: \(t.copiedRows) rows, \(t.copiedDigest)"]
            }).forEach { print($0) }
            for h in hosts {
                print("twin \(h.host ?? "(own)"): \(h.source.series) series, \(h.source.samples) samples, \(h.source.versions) versions, digest \(h.source.digest): \(h.matches ? "same" : "DIFFERS: \(h.copy.samples) samples, \(h.copy.versions) versions, \(h.copy.digest)")")
            }
            print(ok ? "migrated \(tables.reduce(0) { $0 + $1.rows }) rows in \(String(format: "%.1f", report.seconds)) s; serve it with: hosttwin serve --data-dir \(from) --store URL"
                     : "the copy differs from the source (above); the source is unchanged")
        }
        if !ok { throw ExitCode(1) }
    }
}
