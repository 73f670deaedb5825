import ArgumentParser
import CProcessTuning
import Foundation
import Logging
import TwinCollectors
import TwinCore
import TwinPostgres
import TwinRules
import TwinRuntime
import TwinSecurity
import TwinServer
import TwinStorage

/// `--data-dir` and `--store`, shared by every command that touches the store.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Data directory of the embedded store.", discussion: "Default: $HOSTTWIN_DATA_DIR, else /var/lib/hosttwin as root, else ~/.local/share/hosttwin.", valueName: "DIR"))
    var dataDir: String?

    @Option(name: .customLong("store"), help: ArgumentHelp("Keep the store's tables and head log in PostgreSQL (a hub's store), e.g. postgres://hosttwin@127.0.0.1:5432/hosttwin; the data directory keeps the keys.", discussion: "Default: the embedded SQLite store in the data directory. A password goes in the URL (postgres://USER:PASSWORD@HOST:PORT/DB); messages show the URL without it.", valueName: "URL"))
    var storeURL: String?

    /// The directory to use: the flag, the environment, or the default for this user.
    var resolvedDataDir: String { dataDir ?? StoreOptions.defaultDataDir() }

    /// Opens the store (tables in PostgreSQL with `--store`), creating or upgrading it unless `readOnly`;
    /// `hub` names a writing hub among those sharing the database.
    func open(readOnly: Bool = false, hub: String = "main") throws -> TwinStore {
        try TwinStore.open(dataDir: resolvedDataDir, readOnly: readOnly, tablesIn: Self.database(storeURL), hub: hub)
    }

    /// The PostgreSQL database at `url` (nil: none), a bad URL or a refused connection as the command's error.
    static func database(_ url: String?) throws -> PostgresDatabase? {
        do { return try url.map { try PostgresDatabase(url: $0) } } catch { throw CLIError("\(error)") }
    }

    /// Refuses `--store` for a command that works on the embedded store only (`why` says what it does instead).
    func embeddedOnly(_ command: String, _ why: String) throws {
        guard storeURL == nil else { throw CLIError("--store: `hosttwin \(command)` \(why)") }
    }

    static func defaultDataDir() -> String {
        let env = ProcessInfo.processInfo.environment
        if let d = env["HOSTTWIN_DATA_DIR"], !d.isEmpty { return d }
        if getuid() == 0 { return "/var/lib/hosttwin" }
        if let x = env["XDG_DATA_HOME"], !x.isEmpty { return x + "/hosttwin" }
        return (env["HOME"] ?? ".") + "/.local/share/hosttwin"
    }

    /// Opens the store for reading; a missing store is a clear error. Values sealed at rest are opened
    /// when this user can read the data directory's keys, and shown sealed otherwise.
    func openForReading() throws -> TwinStore { try Self.withKeys(open(readOnly: true)) }

    /// `dir` read-only, with its keys when they can be read (without them the cipher masks what it cannot open).
    static func openForReading(_ dir: String) throws -> TwinStore { try withKeys(TwinStore.open(dataDir: dir, readOnly: true)) }

    private static func withKeys(_ store: TwinStore) -> TwinStore {
        if let keys = try? KeyRing(dataDir: store.dataDir, create: false) { store.use(cipher: PolicyCipher(policy: DataPolicy(), keys: keys)) }
        return store
    }
}

/// `--json`.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print JSON instead of a table (shapes in docs/CLI.md).")
    var json = false
    @Flag(name: .long, help: "Do not cut table lines to the terminal's width.")
    var wide = false

    mutating func validate() throws {
        if wide { TableOutput.wide = true }
    }
}

/// How wide tables may be: on a terminal, its width (as procps' `ps` does), unless `--wide`; piped or
/// redirected, whole lines.
enum TableOutput {
    /// Set once from the command line, before any output.
    nonisolated(unsafe) static var wide = false

    /// The terminal's width when standard output is one and lines are to be cut.
    static var limit: Int? {
        guard !wide, isatty(STDOUT_FILENO) != 0 else { return nil }
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 20 else { return nil }
        return Int(size.ws_col)
    }

    /// `line` cut to `limit` characters, the last one an ellipsis when it was longer.
    static func cut(_ line: String, to limit: Int?) -> String {
        guard let limit, line.count > limit else { return line }
        return String(line.prefix(limit - 1)) + "…"
    }
}

/// `--proc-root`, `--sys-root`, `--root`: where the collectors read (fixture trees in tests).
struct HostPathOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Read DIR/proc, DIR/sys and DIR as the host's root (for fixtures or containers).", valueName: "DIR"))
    var root: String?
    @Option(name: .long, help: ArgumentHelp("The proc file system to read.", valueName: "DIR"))
    var procRoot: String?
    @Option(name: .long, help: ArgumentHelp("The sys file system to read.", valueName: "DIR"))
    var sysRoot: String?

    var paths: HostPaths {
        var p = root.map(HostPaths.under) ?? HostPaths()
        if let procRoot { p.proc = procRoot }
        if let sysRoot { p.sys = sysRoot }
        return p
    }
}

/// Parses a TIME argument, turning the error into a validation message.
func parseTime(_ text: String, _ option: String) throws -> Int64 {
    do { return try TwinTime.parse(text) } catch { throw CLIError("\(option): \(error)") }
}

/// JSON with stable key order, for every `--json` output.
func printJSON<T: Encodable>(_ value: T) throws {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "+Inf", negativeInfinity: "-Inf", nan: "NaN")
    print(String(decoding: try e.encode(value), as: UTF8.self))
}

/// Prints rows as an aligned text table (the last column is not padded), each line cut to the terminal's
/// width (``TableOutput``).
func printTable(_ header: [String], _ rows: [[String]]) {
    let limit = TableOutput.limit
    for l in tableLines(header, rows) { print(TableOutput.cut(l, to: limit)) }
}

/// The lines of an aligned text table.
func tableLines(_ header: [String], _ rows: [[String]]) -> [String] {
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  ")
    }
    return [line(header)] + rows.map(line)
}

/// 1536 → "1.5 KiB".
func humanBytes(_ v: Double) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    var x = v
    var i = 0
    while abs(x) >= 1024, i < units.count - 1 { x /= 1024; i += 1 }
    return i == 0 ? String(format: "%.0f %@", x, units[i]) : String(format: "%.1f %@", x, units[i])
}

/// A progress line of long work, on standard error (standard output stays for the result).
func progress(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// An error a command reports to the person running it: the message alone, without the usage text that
/// argument-parsing errors get.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Sizes on the command line: `512M`, `4G`, `1.5T`, `1024` (bytes; powers of 1024, an optional `B`/`iB`).
enum ByteSize {
    static func parse(_ text: String, option: String) throws -> Double {
        let units: [Character: Double] = ["K": 1024, "M": 1_048_576, "G": 1_073_741_824, "T": 1_099_511_627_776]
        var t = text.uppercased()
        if t.hasSuffix("IB") { t.removeLast(2) } else if t.hasSuffix("B") { t.removeLast() }
        let scale = t.last.flatMap { units[$0] }
        if scale != nil { t.removeLast() }
        guard let n = Double(t), n >= 0, n.isFinite, n * (scale ?? 1) < 0x1p62 else { throw CLIError("\(option) \(text): expected a size such as 512M or 4G") }
        return n * (scale ?? 1)
    }
}

/// How long the store keeps each tier, and the most it may take; shared by `run`, `agent` and `import`.
struct RetentionOptions: ParsableArguments {
    @Option(name: .customLong("retention-raw"), help: ArgumentHelp("Keep raw samples this long (default 7d).", valueName: "DURATION"))
    var raw: String?
    @Option(name: .customLong("retention-1m"), help: ArgumentHelp("Keep 1-minute rollups this long (default 90d).", valueName: "DURATION"))
    var minute: String?
    @Option(name: .customLong("retention-1h"), help: ArgumentHelp("Keep 1-hour rollups this long (default 2y).", valueName: "DURATION"))
    var hour: String?
    @Option(name: .customLong("retention-state"), help: ArgumentHelp("Keep ended state versions and events this long (default 90d).", valueName: "DURATION"))
    var state: String?
    @Option(name: .customLong("head-window"), help: .hidden)
    var headWindow: String?
    @Option(name: .customLong("disk-cap"), help: ArgumentHelp("The most the data directory may take, e.g. 2G: above it the oldest raw samples are thinned to the rollups and the gap recorded; state history is kept.", valueName: "SIZE"))
    var diskCap: String?

    /// The policy these flags describe over `file`'s settings and the defaults.
    func policy(file: RunConfig.Retention? = nil, headWindowFile: String? = nil) throws -> StoragePolicy {
        var p = StoragePolicy()
        if let v = raw ?? file?.raw { p.rawRetention = try TwinTime.parseDuration(v) }
        if let v = minute ?? file?.minute { p.minuteRetention = try TwinTime.parseDuration(v) }
        if let v = hour ?? file?.hour { p.hourRetention = try TwinTime.parseDuration(v) }
        if let v = state ?? file?.state { p.stateRetention = try TwinTime.parseDuration(v) }
        if let v = headWindow ?? headWindowFile { p.headWindow = try TwinTime.parseDuration(v) }
        if let v = diskCap { p.diskCap = Int64(try ByteSize.parse(v, option: "--disk-cap")) }
        do { try p.validate() } catch { throw CLIError("\(error)") }
        return p
    }
}

/// The rules a running twin evaluates (`run`, and `serve` as a hub), and where their alerts go.
struct RuleOptions: ParsableArguments {
    @Option(name: .customLong("rules"), help: ArgumentHelp("A rule file (Prometheus' format plus HostTwin's conditions; repeatable). Reloaded on SIGHUP and POST /-/reload.", valueName: "FILE"))
    var files: [String] = []
    @Flag(name: .customLong("no-default-rules"), help: "Leave out the built-in rules (`hosttwin rules show --default`).")
    var noDefaults = false
    @Flag(name: .customLong("compliance"), help: "Turn the compliance pack on: SSH root login and passwords, world-writable files under watched paths, SUID files no package owns, listeners beyond loopback not on the allow-list (`hosttwin compliance`).")
    var compliance = false
    @Option(name: .customLong("alerting"), help: ArgumentHelp("The alerting configuration: notifications (Alertmanager, webhook, log, command) and the allow-list of remediation actions (docs/RULES.md).", valueName: "FILE"))
    var alertingFile: String?

    /// The rule service over `store` with its notifier and remediation, errors as the command's; `fileRules`,
    /// `fileDefaults` and `fileAlerting` come from a configuration file (`rules`, `default_rules`, `alerting`).
    func service(store: TwinStore, timer: Int64? = nil, dispatcher: AgentActionQueue? = nil, fileRules: [String] = [], fileDefaults: Bool? = nil,
                 fileCompliance: Bool? = nil, fileAlerting: String? = nil, logger: Logger) throws -> RuleService {
        do {
            let alerting = try (alertingFile ?? fileAlerting).map(AlertingConfig.load) ?? AlertingConfig()
            if dispatcher == nil, let name = alerting.actions.values.first(where: \.dispatch)?.name {
                throw CLIError("action \(name): 'dispatch: agent' is for a hub's alerting configuration (`hosttwin serve` receiving agents); here give it a command")
            }
            let sources = RuleSources(files: files + fileRules, includeDefaults: !noDefaults && (fileDefaults ?? true), includeCompliance: compliance || (fileCompliance ?? false),
                                      allowedActions: Set(alerting.actions.keys))
            let runner = try RuleRunner(store: store, sources: sources)
            return RuleService(runner: runner, alerting: alerting, notifier: alerting.channels.isEmpty ? nil : AlertNotifier(config: alerting, store: store, logger: logger),
                               remediation: alerting.actions.isEmpty ? nil : Remediation(config: alerting, store: store, dispatcher: dispatcher, logger: logger),
                               timer: timer, logger: logger)
        } catch let e as RuleFileErrors {
            throw CLIError("rules refused:\n" + e.errors.map { "  \($0)" }.joined(separator: "\n"))
        }
    }
}

/// Logs at debug what the constructors set before main (`CProcessTuning`): glibc's malloc arenas and
/// fault-around for the program's code (`run` and `agent`).
func logProcessTuning(_ logger: Logger) {
    logger.debug("malloc arenas: \(hosttwin_malloc_arena_limit() == 1 ? "one (set before main)" : "glibc's default")")
    let registered = hosttwin_fault_around_off()
    logger.debug("fault-around: \(registered > 0 ? "off for \(registered) code and read-only mappings" : "the kernel's")")
}

/// How far back `status` and `ps` look for each series' latest values: past the longest a series read least
/// often waits between samples (idle processes, relaxed up to a minute by the CPU budget).
let latestValuesLookback = Sampler.longestRelaxedInterval + 30_000
