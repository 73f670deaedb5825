import ArgumentParser
import Foundation
import Logging
import TwinAnalytics
import TwinCollectors
import TwinCore
import TwinRules
import TwinRuntime
import TwinSecurity
import TwinStorage

/// `hosttwin bench scenarios`: provokes the failures the early warnings are for on this machine — a file
/// system that fills, a child that crash-loops, CPU and IO pressure, a process that leaks memory — each in
/// seeded runs on a fresh twin collecting every second (or every `--interval`), and measures whether the warning came (recall),
/// how long before the failure (lead time) or after the trouble began (detection delay), which other
/// warnings appeared meanwhile, and where `hosttwin explain` ranks the provoked cause.
struct BenchScenarios: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scenarios",
        abstract: "Provoke filling file systems, crash loops, CPU/IO pressure and memory leaks on this host; measure the early warnings' recall and lead time, and explain's ranking of the cause.",
        discussion: """
        Each run opens a fresh store, collects this host every second in-process (or every --interval seconds; 20 quiet seconds first: the twin \
        is young, as after a fresh start), then provokes one scenario and evaluates the early warnings of `hosttwin \
        anomalies` every 2 seconds. fill: a loop-mounted ext4 image of 128 MiB (mounted before the quiet seconds) \
        written at a seeded 1-3 MB/s until it is full (needs root and losetup); the warning must come before the write fails. crash-loop: a child that \
        fails (sh -c "sleep N; exit 1") after a seeded 2-5 s, restarted at once by this process; the warning must come within 60 s of the \
        first exit. cpu-pressure, io-pressure: stress-ng (Debian package) with a seeded number of workers; the \
        warning must come within 180 s. leak: python3 allocating a seeded 5-10 MB/s in a memory cgroup limited to 2 GB \
        (the kernel's OOM kill is the failure; without a memory cgroup the leaker stops itself at 2 GB); the warning \
        must come before it. In each run, `hosttwin explain` of the scenario's series (the file system's free \
        bytes, forks, CPU or IO pressure, available memory) 30 s after the warning is asked whether the provoked cause (the \
        writer, the restarted child, stress-ng, the leaker) ranks in its top 3. --json prints every run and the summary.
        """
    )
    @Option(help: "Runs per scenario.") var runs = 10
    @Option(help: ArgumentHelp("Observe every N seconds instead of every second (5, 15, 60: what a coarser interval costs the warnings). The provocations keep their pace (a crash loop's child is restarted within a second); the quiet start lasts 20 s or three observations, whichever is longer; the warnings are evaluated at each observation (every 2 s at 1 s).", valueName: "N"))
    var interval = 1
    @Flag(inversion: .prefixedNo, help: "Between observations, store what the change-driven collectors report (process starts and exits, sockets, files) once a second, as `run` does between its ticks (without its CPU budget); with --no-change-driven, polling alone.")
    var changeDriven = true
    @Option(help: "Seed of the first run (run k uses seed + k).") var seed: UInt64 = 1
    @Option(parsing: .upToNextOption, help: "Scenarios to run (fill, crash-loop, cpu-pressure, io-pressure, leak).") var scenario: [String] = Scenario.allCases.map(\.rawValue)
    @Option(help: ArgumentHelp("Instead of provoking: count the warnings raised over a recorded store without provocation (false warnings), evaluated every minute.", valueName: "DIR")) var recorded: String?
    @Option(help: ArgumentHelp("Prevention (fill, crash-loop, leak): each run's failure is bounded so a remedied run can end without it; with `on` the scenario's remediation action runs through the twin's remediation when the warning comes, with `off` it does not. Reports the share of failures that never happened.", valueName: "on|off"))
    var actions: String?
    @Flag(help: "Print JSON.") var json = false

    enum Scenario: String, CaseIterable {
        case fill, crashLoop = "crash-loop", cpuPressure = "cpu-pressure", ioPressure = "io-pressure", leak
        /// The scenarios whose failure a remediation action can prevent (`--actions`).
        static let preventable: [Scenario] = [.fill, .crashLoop, .leak]
        /// How long after the trouble begins the warning still counts (fill, leak: before the failure).
        var deadline: Int64 { self == .crashLoop ? 60_000 : mustLead ? 0 : 180_000 }
        /// The warning must come before the failure (lead time), not after the start (delay).
        var mustLead: Bool { self == .fill || self == .leak }
    }

    struct Run: Encodable {
        var scenario: String
        var seed: UInt64
        var parameter: String
        /// When the trouble began, failed (fill: the write that found the disk full), and the warning came (ms).
        var began: Int64
        var failed: Int64?
        var warned: Int64?
        var warning: String?
        var detected: Bool
        /// Fill: seconds from the warning to the failure; the others: seconds from the trouble's start to the warning.
        var leadSeconds: Double?
        var delaySeconds: Double?
        /// Warnings of other kinds or subjects that appeared during the run (false for this scenario).
        var otherWarnings: [String]
        /// `explain` of the scenario's series 30 s after the warning (else at the end): the cause's rank (1-based;
        /// nil when not among the 10 listed) and the top 3.
        var causeRank: Int?
        var explainTop: [String]
        var note: String?
        /// Prevention runs: whether actions were on, the remediation's run (status, start), when the failure
        /// happened and whether it never did.
        var actions: String?
        var action: String?
        var actionAt: Int64?
        var harmed: Int64?
        var prevented: Bool?
        enum CodingKeys: String, CodingKey {
            case scenario, seed, parameter, began, failed, warned, warning, detected, note, actions, action, harmed, prevented
            case leadSeconds = "lead_seconds", delaySeconds = "delay_seconds", otherWarnings = "other_warnings"
            case causeRank = "cause_rank", explainTop = "explain_top", actionAt = "action_at"
        }
    }

    func run() throws {
        if let recorded { return try falseWarnings(recorded) }
        if let actions, actions != "on", actions != "off" { throw CLIError("--actions \(actions): on or off") }
        guard (1...3600).contains(interval) else { throw CLIError("--interval \(interval): whole seconds from 1 to 3600") }
        let scenario = actions == nil || self.scenario != Scenario.allCases.map(\.rawValue) ? self.scenario : Scenario.preventable.map(\.rawValue)
        if actions != nil, let other = scenario.first(where: { !Scenario.preventable.map(\.rawValue).contains($0) }) {
            throw CLIError("--actions measures prevention of fill, crash-loop and leak, not \(other)")
        }
        var results: [Run] = []
        for name in scenario {
            guard let s = Scenario(rawValue: name) else { throw CLIError("unknown scenario \(name); known: \(Scenario.allCases.map(\.rawValue).joined(separator: ", "))") }
            if [.cpuPressure, .ioPressure].contains(s), !FileManager.default.isExecutableFile(atPath: "/usr/bin/stress-ng") {
                throw CLIError("\(name) needs stress-ng (apt-get install stress-ng)")
            }
            if s == .leak, LeakProvocation.python == nil { throw CLIError("leak needs python3") }
            if s == .fill, getuid() != 0 { throw CLIError("fill needs root (it loop-mounts a file system)") }
            for k in 0..<runs {
                let r = try Self.runOne(s, seed: seed &+ UInt64(k), actions: actions.map { $0 == "on" }, interval: Int64(interval) * 1000, changeDriven: changeDriven)
                // Each run as it ends (on standard error with --json, so that a long session's partial
                // results survive an interruption).
                let line = "\(name) seed \(r.seed) (\(r.parameter)): " + (r.detected ? "warned" : "MISSED")
                    + (r.leadSeconds.map { String(format: ", %.0f s before the failure", $0) } ?? "")
                    + (r.delaySeconds.map { String(format: ", %.0f s after it began", $0) } ?? "")
                    + (r.otherWarnings.isEmpty ? "" : "; other warnings: \(r.otherWarnings.joined(separator: "; "))")
                    + "; explain: cause " + (r.causeRank.map { "ranked \($0)" } ?? "not ranked") + " (top: \(r.explainTop.joined(separator: ", ")))"
                    + (r.note.map { " (\($0))" } ?? "")
                    + (r.prevented.map { p in "; actions \(r.actions ?? ""): " + (p ? "the failure never happened" : "FAILED") + (r.action.map { " (action: \($0))" } ?? "") } ?? "")
                if json { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { print(line) }
                results.append(r)
            }
        }
        var summary: [String: [String: Double]] = [:]
        for name in scenario {
            let rs = results.filter { $0.scenario == name }
            guard !rs.isEmpty else { continue }
            let leads = rs.compactMap(\.leadSeconds).sorted(), delays = rs.compactMap(\.delaySeconds).sorted()
            var s: [String: Double] = ["runs": Double(rs.count), "recall": Double(rs.filter(\.detected).count) / Double(rs.count),
                                       "other_warnings": Double(rs.reduce(0) { $0 + $1.otherWarnings.count }),
                                       "cause_in_top3": Double(rs.filter { ($0.causeRank ?? .max) <= 3 }.count) / Double(rs.count)]
            if !leads.isEmpty { s["lead_seconds_median"] = leads[leads.count / 2]; s["lead_seconds_min"] = leads[0] }
            if !delays.isEmpty { s["delay_seconds_median"] = delays[delays.count / 2]; s["delay_seconds_max"] = delays.last! }
            if actions != nil { s["prevented"] = Double(rs.filter { $0.prevented == true }.count) / Double(rs.count) }
            summary[name] = s
        }
        if json {
            struct Out: Encodable { var runs: [Run]; var summary: [String: [String: Double]] }
            try printJSON(Out(runs: results, summary: summary))
            return
        }
        for name in scenario {
            guard let s = summary[name] else { continue }
            var line = String(format: "%@: recall %.0f %% of %.0f runs", name, s["recall"]! * 100, s["runs"]!)
            if let m = s["lead_seconds_median"] { line += String(format: ", lead time median %.0f s (least %.0f s)", m, s["lead_seconds_min"]!) }
            if let m = s["delay_seconds_median"] { line += String(format: ", detection delay median %.0f s (most %.0f s)", m, s["delay_seconds_max"]!) }
            line += String(format: ", %.0f other warnings; explain ranks the cause in its top 3 in %.0f %%", s["other_warnings"]!, s["cause_in_top3"]! * 100)
            if let p = s["prevented"] { line += String(format: "; actions %@: %.0f %% of the failures never happened", actions ?? "", p * 100) }
            print(line)
        }
    }

    /// Every warning the store's own history raises, evaluated each minute over the hour before it as the
    /// dashboard does; a warning (kind and subject) that stays raised, or returns within 10 minutes, is
    /// one episode. Episodes per host-day over the recorded span are the false warnings per host-day.
    func falseWarnings(_ dir: String) throws {
        // Opened for writing: an older store is upgraded to this version first (pass a copy to keep it).
        let store = try TwinStore.open(dataDir: dir)
        if let keys = try? KeyRing(dataDir: dir, create: false) { store.use(cipher: PolicyCipher(policy: DataPolicy(), keys: keys)) }
        guard let (first, last) = try store.sampleTimeRange(), last - first >= 600_000 else { throw CLIError("\(dir) holds less than 10 minutes of samples") }
        let catalog = try store.seriesCatalog()
        struct Episode: Encodable { var warning: String; var host: String?; var first: String; var last: String; var evidence: String }
        var open: [String: (first: Int64, last: Int64, evidence: String, host: String?)] = [:]
        var episodes: [Episode] = []
        func close(_ key: String) {
            guard let e = open.removeValue(forKey: key) else { return }
            episodes.append(Episode(warning: key, host: e.host, first: TwinTime.rfc3339(e.first), last: TwinTime.rfc3339(e.last), evidence: e.evidence))
        }
        var t = first + 600_000
        while t <= last {
            for w in try AnomalyScan.warnings(store: store, catalog: catalog, from: max(first, t - 3_600_000), to: t) {
                let key = (w.host.map { $0 + " " } ?? "") + Self.text(w)
                if let e = open[key], t - e.last > 600_000 { close(key) }
                open[key, default: (t, t, w.evidence, w.host)].last = t
            }
            t += 60_000
        }
        for k in Array(open.keys) { close(k) }
        let hosts = Set(catalog.map { $0.key.labels["host"] ?? "" }).count
        let days = Double(last - first) / 86_400_000
        let perHostDay = Double(episodes.count) / (days * Double(hosts))
        if json {
            struct Out: Encodable { var from: String; var to: String; var hosts: Int; var episodes: [Episode]; var perHostDay: Double
                enum CodingKeys: String, CodingKey { case from, to, hosts, episodes, perHostDay = "false_warnings_per_host_day" } }
            try printJSON(Out(from: TwinTime.rfc3339(first), to: TwinTime.rfc3339(last), hosts: hosts, episodes: episodes.sorted { $0.first < $1.first }, perHostDay: perHostDay))
            return
        }
        for e in episodes.sorted(by: { $0.first < $1.first }) { print("\(e.first) → \(e.last)  \(e.warning)  (\(e.evidence))") }
        print(String(format: "%d warning episodes over %@ of %d host(s), %@ to %@: %.2f per host-day", episodes.count, Advisor.formatDuration(last - first), hosts,
                     TwinTime.rfc3339(first), TwinTime.rfc3339(last), perHostDay))
    }

    /// A fresh twin of this host, observing every `interval` ms (every second by default), with the early
    /// warnings at hand; `changeDriven`: storing what the change-driven collectors report once a second
    /// between observations.
    final class Twin {
        let dir: String
        let store: TwinStore
        let writer: TwinWriter
        let sampler: Sampler
        let interval: Int64
        let changeDriven: Bool

        init(interval: Int64 = 1000, changeDriven: Bool = true) throws {
            self.interval = interval
            self.changeDriven = changeDriven
            sampler = Sampler(tick: interval)
            dir = NSTemporaryDirectory() + "hosttwin-scenario-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            store = try TwinStore.open(dataDir: dir)
            writer = TwinWriter(store: store)
            try writer.begin(now: TwinTime.nowMillis(), interval: interval)
        }

        /// Waits for the next whole second, and records it when it is a multiple of the interval: the
        /// second, and whether it was observed.
        @discardableResult
        func tick() throws -> (now: Int64, observed: Bool) {
            let now = TwinTime.nowMillis()
            let next = (now / 1000 + 1) * 1000
            usleep(useconds_t((next - now) * 1000))
            guard next % interval == 0 else {
                if changeDriven, let changed = sampler.refreshChanged(now: next) { _ = try writer.commitState(changed) }
                return (next, false)
            }
            let obs = sampler.tick(now: next)
            try writer.commit(obs, health: obs.health)
            return (next, true)
        }

        /// The early warnings over the last hour, as `kind: subject` texts.
        func warnings(now: Int64) throws -> [AnomalyReport.Warning] {
            try AnomalyScan.warnings(store: store, catalog: try store.seriesCatalog(), from: now - 3_600_000, to: now)
        }

        func close() {
            try? writer.finish(now: TwinTime.nowMillis())
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    /// One seeded run; `actions` (prevention): nil as in the warning figures, else a bounded failure with the
    /// remediation action on or off.
    static func runOne(_ scenario: Scenario, seed: UInt64, actions: Bool? = nil, interval: Int64 = 1000, changeDriven: Bool = true) throws -> Run {
        var rng = SeededRandom(seed: seed)
        let twin = try Twin(interval: interval, changeDriven: changeDriven)
        defer { twin.close() }
        let prevention = actions != nil
        // The file system to fill exists before the quiet seconds, as a real one would.
        let fill = scenario == .fill ? try FillProvocation(rate: Double.random(in: 1...3, using: &rng) * 1e6, prevention: prevention) : nil
        do {
            var (seconds, observed) = (0, 0)
            while seconds < 20 || observed < 3 {
                seconds += 1
                if try twin.tick().observed { observed += 1 }
            }
        } catch { fill?.stop(); throw error }
        let baseline = Set(try twin.warnings(now: TwinTime.nowMillis()).map(Self.text))
        let provocation: any Provocation
        switch scenario {
        case .fill: provocation = fill!; fill!.begin()
        case .crashLoop: provocation = CrashLoopProvocation(runSeconds: Double.random(in: 2...5, using: &rng), prevention: prevention)
        case .cpuPressure: provocation = try StressProvocation(arguments: ["--cpu", String(Int.random(in: 3...6, using: &rng))], kind: "sustained pressure", subject: "cpu")
        case .ioPressure: provocation = try StressProvocation(arguments: ["--hdd", String(Int.random(in: 2...4, using: &rng)), "--hdd-bytes", "256M", "--temp-path", twin.dir], kind: "sustained pressure", subject: "io")
        case .leak: provocation = try LeakProvocation(rate: Double.random(in: 5...10, using: &rng) * 1e6)
        }
        defer { provocation.stop() }
        // Prevention with actions on: the scenario's remedy is the allow-list's one action, run through the
        // twin's remediation (argv, no shell, clean environment, timeout) when the warning comes.
        let remediation = actions == true ? provocation.remedy.map { argv -> Remediation in
            var config = AlertingConfig()
            config.actions["remedy"] = AlertingConfig.Action(name: "remedy", argv: argv, timeout: 10_000, cooldown: 3_600_000)
            var logger = Logger(label: "hosttwin.bench")
            logger.logLevel = .error
            return Remediation(config: config, store: twin.store, logger: logger)
        } : nil
        let began = TwinTime.nowMillis()
        var warned: Int64?, warning: String?
        var others = Set<String>()
        let limit = began + (scenario == .fill ? 240_000 : scenario == .leak ? 600_000 : scenario.deadline + 20_000)
        var k = 0
        while true {
            let (now, observed) = try twin.tick()
            provocation.poll(now: now)
            if observed { k += 1 }
            if observed && (interval > 1000 || k % 2 == 0) {
                for w in try twin.warnings(now: now) {
                    if warned == nil, provocation.matches(w) {
                        warned = now
                        warning = text(w)
                        remediation?.start("remedy", alert: "{alertname=\"\(w.kind)\"}", rule: w.kind, value: 1, host: nil, at: now)
                    }
                    if !provocation.matches(w), !baseline.contains(text(w)) { others.insert(text(w)) }
                }
            }
            // Fill, leak: until the failure and 10 s after; the others: until 30 s after the warning (what
            // explain is asked about then), or the deadline passed.
            if prevention {
                // Until the failure (and 10 s more) or the provocation ran its course without it.
                if let harmed = provocation.harm, now > harmed + 10_000 { break }
                if provocation.over, warned.map({ now >= $0 + Self.explainAfter }) ?? true { break }
            } else {
                if let failed = provocation.failed, scenario.mustLead, now > failed + 10_000 { break }
                if !scenario.mustLead, let w = warned, now >= w + Self.explainAfter { break }
            }
            if now > limit { break }
        }
        let failed = provocation.failed
        let detected: Bool
        var lead: Double?, delay: Double?
        if scenario.mustLead {
            detected = warned.map { w in failed.map { w < $0 } ?? true } ?? false
            if let w = warned, let f = failed { lead = Double(f - w) / 1000 }
        } else {
            let start = failed ?? began
            detected = warned.map { $0 - start <= scenario.deadline } ?? false
            if let w = warned { delay = Double(w - start) / 1000 }
        }
        // What explain ranks 30 s after the warning, as a user reading it would ask (else at the end).
        var rank: Int?, top: [String] = []
        let catalog = try twin.store.seriesCatalog()
        if let target = catalog.first(where: { s in s.key.metric == provocation.target.metric && provocation.target.labels.allSatisfy { s.key.labels[$0.name] == $0.value } }) {
            let at = warned.map { min(TwinTime.nowMillis(), $0 + Self.explainAfter) } ?? TwinTime.nowMillis()
            let e = try Explainer.explain(store: twin.store, target: target, at: at, window: 900_000)
            rank = e.ranked.firstIndex(where: provocation.isCause).map { $0 + 1 }
            top = e.ranked.prefix(3).map(\.subject)
        }
        var run = Run(scenario: scenario.rawValue, seed: seed, parameter: provocation.parameter, began: began, failed: failed, warned: warned, warning: warning,
                      detected: detected, leadSeconds: lead, delaySeconds: delay, otherWarnings: others.sorted(), causeRank: rank, explainTop: top, note: provocation.note)
        if let actions {
            run.actions = actions ? "on" : "off"
            run.harmed = provocation.harm
            run.prevented = provocation.harm == nil
            if let r = try twin.store.actionRuns(from: 0, to: .max).first {
                run.action = "\(r.argv.joined(separator: " ")): \(r.status)"
                run.actionAt = r.time
            }
        }
        return run
    }

    /// How long after the warning `explain` is asked.
    static let explainAfter: Int64 = 30_000

    static func text(_ w: AnomalyReport.Warning) -> String { "\(w.kind): \(w.subject)" }
}

/// Trouble made on purpose.
protocol Provocation: AnyObject {
    var parameter: String { get }
    /// When it failed (the fill's full disk; a crash loop's first exit); nil while it has not.
    var failed: Int64? { get }
    var note: String? { get }
    /// The series `explain` is asked about (metric and the labels that pick it).
    var target: SeriesKey { get }
    /// Whether `explain`'s evidence names the provoked cause.
    func isCause(_ item: Explanation.Item) -> Bool
    func matches(_ w: AnomalyReport.Warning) -> Bool
    /// Prevention runs: the argv of the action that remedies it.
    var remedy: [String]? { get }
    /// Prevention runs: when the failure happened (nil while it has not), and whether the provocation ran its
    /// course without it.
    var harm: Int64? { get }
    var over: Bool { get }
    /// Called every tick.
    func poll(now: Int64)
    func stop()
}

extension Provocation {
    var remedy: [String]? { nil }
    var harm: Int64? { failed }
    var over: Bool { false }
}

/// A loop-mounted ext4 image (mounted at creation) filled at a fixed rate from a background thread once
/// `begin` is called. For prevention, 40 MiB of stale data (`cache`) is written at creation and the fill
/// stops 20 MiB beyond the space free when it begins: it fails unless the cache is removed in time (the
/// remedy: `rm -f cache`).
final class FillProvocation: Provocation, @unchecked Sendable {
    let image: String, mount: String, rate: Double
    let lock = NSLock()
    var full: Int64?
    var stopping = false
    let prevention: Bool
    /// Prevention: when the bounded fill completed.
    var completed: Int64?
    var note: String?
    var parameter: String { String(format: "%.1f MB/s into 128 MiB", rate / 1e6) }
    var failed: Int64? { lock.withLock { full } }

    init(rate: Double, prevention: Bool = false) throws {
        self.rate = rate
        self.prevention = prevention
        let base = NSTemporaryDirectory() + "hosttwin-fill-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        image = base + ".img"
        mount = base
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: image, contents: nil), truncate(image, 128 << 20) == 0 else { throw CLIError("cannot create \(image)") }
        try Self.exec("/usr/sbin/mkfs.ext4", ["-q", "-F", image])
        try Self.exec("/usr/bin/mount", ["-o", "loop", image, mount])
        if prevention {
            guard FileManager.default.createFile(atPath: mount + "/cache", contents: Data(repeating: 0x33, count: 40 << 20)) else { throw CLIError("cannot write \(mount)/cache") }
            sync()
        }
    }

    var remedy: [String]? { ["/bin/rm", "-f", mount + "/cache"] }
    var over: Bool { lock.withLock { completed != nil } }

    /// Starts filling.
    func begin() { Thread.detachNewThread { [self] in write() } }

    /// Writes 64 KiB blocks at `rate` until the file system is full or the provocation stops.
    func write() {
        let fd = open(mount + "/fill", O_WRONLY | O_CREAT, 0o644)
        guard fd >= 0 else { lock.withLock { note = "cannot open the file to fill"; full = TwinTime.nowMillis() }; return }
        defer { close(fd) }
        let block = [UInt8](repeating: 0x5a, count: 64 << 10)
        let start = TwinTime.nowMillis()
        var written = 0.0
        var free = statvfs()
        let total = prevention && statvfs(mount, &free) == 0 ? Double(free.f_bavail) * Double(free.f_frsize) + Double(20 << 20) : .infinity
        while !(lock.withLock { stopping }) {
            if written >= total {
                lock.withLock { completed = TwinTime.nowMillis() }
                return
            }
            let due = Double(TwinTime.nowMillis() - start) / 1000 * rate
            if written >= due { usleep(10_000); continue }
            let n = block.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
            if n < block.count {
                fsync(fd)
                lock.withLock { if full == nil { full = TwinTime.nowMillis() } }
                return
            }
            written += Double(n)
        }
    }

    func matches(_ w: AnomalyReport.Warning) -> Bool { w.subject == mount && w.kind.hasPrefix("filesystem f") }
    var target: SeriesKey { SeriesKey("node_filesystem_avail_bytes", Labels(["mountpoint": mount])) }
    /// The writer is a thread of this process.
    func isCause(_ item: Explanation.Item) -> Bool { item.subject.contains("pid=\"\(getpid())\"") }
    func poll(now: Int64) {}

    func stop() {
        lock.withLock { stopping = true }
        usleep(100_000)
        try? Self.exec("/usr/bin/umount", [mount])
        try? FileManager.default.removeItem(atPath: image)
        try? FileManager.default.removeItem(atPath: mount)
    }

    static func exec(_ path: String, _ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw CLIError("\(path) \(args.joined(separator: " ")) failed (\(p.terminationStatus))") }
    }
}

/// A child that fails (exit status 1) after `runSeconds`, restarted at once by this process (its
/// supervisor): `sh -c "sleep N; exit 1"`. For prevention the failure is the loop lasting a minute (a crash
/// 60 s or more after the first), and the child stops failing once a file exists (a fixed configuration;
/// the remedy: `touch` it).
final class CrashLoopProvocation: Provocation {
    let runSeconds: Double
    var child: Process?
    var firstExit: Int64?
    var restarts = 0
    var note: String? { "\(restarts) restarts" }
    var parameter: String { String(format: "runs of %.1f s", runSeconds) }
    var failed: Int64? { firstExit }
    var script: String {
        String(format: "sleep %.1f; ", runSeconds) + (fixed.map { "test -e \($0) && exec sleep 600; " } ?? "") + "exit 1"
    }
    var command: String { "/bin/sh -c " + script }
    /// Prevention: the file whose presence fixes the child, and when the loop lasted a minute.
    let fixed: String?
    var lasted: Int64?
    var lastPoll: Int64 = 0

    init(runSeconds: Double, prevention: Bool = false) {
        self.runSeconds = runSeconds
        fixed = prevention ? NSTemporaryDirectory() + "hosttwin-fixed-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" : nil
        start()
    }

    var remedy: [String]? { fixed.map { ["/usr/bin/touch", $0] } }
    var harm: Int64? { fixed == nil ? firstExit : lasted }
    var over: Bool { firstExit.map { lastPoll >= $0 + 62_000 } ?? false }

    func start() {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script]
        try? p.run()
        child = p
    }

    func matches(_ w: AnomalyReport.Warning) -> Bool { w.kind == "restarting in a loop" && w.subject.hasSuffix(script) }
    var target: SeriesKey { SeriesKey("node_forks_total") }
    func isCause(_ item: Explanation.Item) -> Bool { item.process == "sh" || item.process == "sleep" }

    func poll(now: Int64) {
        lastPoll = now
        guard let c = child, !c.isRunning else { return }
        if firstExit == nil { firstExit = now }
        if fixed != nil, lasted == nil, now - firstExit! >= 60_000 { lasted = now }
        restarts += 1
        start()
    }

    func stop() {
        if let c = child, c.isRunning { kill(c.processIdentifier, SIGKILL); c.waitUntilExit() }
        if let fixed { unlink(fixed) }
    }
}

/// stress-ng with the given workers until stopped (``spawnInOwnGroup``: stopping it stops its workers too).
final class StressProvocation: Provocation {
    let pid: pid_t
    let kind: String, subject: String
    let parameter: String
    var failed: Int64? { nil }
    var note: String? { nil }

    init(arguments: [String], kind: String, subject: String) throws {
        (self.kind, self.subject) = (kind, subject)
        parameter = arguments.prefix(2).joined(separator: " ")
        pid = try spawnInOwnGroup(["/usr/bin/stress-ng"] + arguments + ["--timeout", "300s", "--quiet"])
    }

    func matches(_ w: AnomalyReport.Warning) -> Bool { w.kind == kind && w.subject.contains("pressure_\(subject)") }
    var target: SeriesKey { SeriesKey("node_pressure_\(subject)_waiting_seconds_total") }
    func isCause(_ item: Explanation.Item) -> Bool { item.process?.hasPrefix("stress-ng") ?? false }
    func poll(now: Int64) {}

    func stop() {
        kill(-pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }
}

/// Spawns `argv` (an absolute path first) with an empty signal mask (a Foundation `Process` child
/// inherits this process's blocked signals, and stress-ng then ignores SIGTERM) in a process group of its
/// own, so that `kill(-pid, ...)` reaches its children too.
func spawnInOwnGroup(_ argv: [String]) throws -> pid_t {
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attr, &empty)
    posix_spawnattr_setpgroup(&attr, 0)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP))
    var child: pid_t = 0
    let cArgs = argv.map { strdup($0) } + [nil]
    defer { for a in cArgs { free(a) } }
    let rc = posix_spawn(&child, argv[0], nil, &attr, cArgs, environ)
    guard rc == 0 else { throw CLIError("cannot start \(argv[0]): \(String(cString: strerror(rc)))") }
    return child
}

/// A process that leaks memory at a fixed rate: python3 keeping 1 MB blocks, in a memory cgroup limited
/// to 2 GB where the host has one (the kernel's OOM kill is the failure); without one, the leaker exits
/// at 2 GB itself (a stand-in for the kill).
final class LeakProvocation: Provocation {
    static let limit = 2_000_000_000
    static let python = ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let script = """
    import sys, time
    rate, cap = float(sys.argv[1]), float(sys.argv[2])
    time.sleep(1)
    held, n, t0 = [], 0, time.time()
    while n < cap:
        if n < (time.time() - t0) * rate:
            held.append(b"\\x01" * 1048576); n += 1048576
        else:
            time.sleep(0.02)
    sys.exit(3)
    """
    let rate: Double
    let pid: pid_t
    var cgroup: String?
    var exited: Int64?
    /// Prevention: when the remedy (SIGTERM) ended the leaker.
    var remedied: Int64?
    var note: String?
    var parameter: String { String(format: "%.1f MB/s", rate / 1e6) }
    var failed: Int64? { exited }
    var remedy: [String]? { ["/bin/kill", "-TERM", String(pid)] }
    var over: Bool { remedied != nil }
    var target: SeriesKey { SeriesKey("node_memory_MemAvailable_bytes") }

    init(rate: Double) throws {
        self.rate = rate
        pid = try spawnInOwnGroup([Self.python!, "-c", Self.script, String(rate), String(Self.limit + 64_000_000)])
        cgroup = Self.confine(pid)
        if cgroup == nil { note = "no memory cgroup: the leaker stops at 2 GB itself" }
    }

    /// Moves `pid` into a new memory cgroup limited to `limit` (cgroup v1, else v2); its path, or nil.
    static func confine(_ pid: pid_t) -> String? {
        let name = "hosttwin-leak-\(getpid())-\(pid)"
        for (root, limitFile) in [("/sys/fs/cgroup/memory", "memory.limit_in_bytes"), ("/sys/fs/cgroup", "memory.max")] {
            let dir = root + "/" + name
            guard FileManager.default.fileExists(atPath: root + "/cgroup.procs"), mkdir(dir, 0o755) == 0 else { continue }
            if (try? String(limit).write(toFile: dir + "/" + limitFile, atomically: false, encoding: .utf8)) != nil,
               (try? String(pid).write(toFile: dir + "/cgroup.procs", atomically: false, encoding: .utf8)) != nil {
                return dir
            }
            rmdir(dir)
        }
        return nil
    }

    func matches(_ w: AnomalyReport.Warning) -> Bool {
        (w.kind == "memory leak suspect" && w.subject.contains("pid=\"\(pid)\"")) || w.kind == "memory running out"
    }
    func isCause(_ item: Explanation.Item) -> Bool { item.subject.contains("pid=\"\(pid)\"") || item.subject.hasPrefix("processes python") }

    func poll(now: Int64) {
        guard exited == nil, remedied == nil else { return }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            let signal = status & 0x7f
            if signal == SIGTERM { remedied = now; note = "stopped by the remedy (SIGTERM)"; return }
            exited = now
            note = signal == SIGKILL ? "OOM-killed in its cgroup" : "exited \((status >> 8) & 0xff)" + (cgroup == nil ? " at 2 GB (no memory cgroup)" : "")
        }
    }

    func stop() {
        if exited == nil, remedied == nil {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
        }
        if let cgroup { for _ in 0..<20 where rmdir(cgroup) != 0 { usleep(50_000) } }
    }
}
