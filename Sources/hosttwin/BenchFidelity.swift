import ArgumentParser
import Foundation
import Glibc
import Synchronization
import TwinAnalytics
import TwinCore
import TwinServer
import TwinStorage

/// `hosttwin bench fidelity`: the twin's state against ground truth taken independently by Debian's own
/// tools, at random moments, with optional churn; and the update latency of what the churn started.
struct BenchFidelity: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fidelity",
        abstract: "The twin's state against ps, ss, findmnt, dpkg-query and ip at random moments, with optional churn; update latency.",
        discussion: """
        Starts `hosttwin run` on a fresh data directory, then at random moments (every 2 to 5 s) runs the tools and, \
        after the twin's next observation, runs them again. When the time is up it stops the twin and compares, per \
        kind, the tools' capture with the twin's state as of the same instant (`state --at`). Mismatches are \
        classified by a second look at both sides (docs/FIDELITY.md); unexplained ones are failures. With \
        --processes/--listeners/--connections it churns the host meanwhile and reports, for each process and \
        listener it started, how long until the twin showed it; with --packages, each install and removal of a \
        probe package.
        """)
    @OptionGroup var output: OutputOptions
    @Option(help: ArgumentHelp("How long to capture.", valueName: "DURATION")) var duration: String = "60s"
    @Option(help: ArgumentHelp("The twin's tick interval.", valueName: "DURATION")) var interval: String = "1s"
    @Option(help: ArgumentHelp("Churn: short-lived processes started per second.", valueName: "N")) var processes: Double = 0
    @Option(help: ArgumentHelp("Churn: listening TCP sockets opened per second.", valueName: "N")) var listeners: Double = 0
    @Option(help: ArgumentHelp("Churn: loopback TCP connections opened per second.", valueName: "N")) var connections: Double = 0
    @Option(help: ArgumentHelp("Churn: files written per second in a directory the twin watches (`run --watch`).", valueName: "N")) var files: Double = 0
    @Option(help: ArgumentHelp("Installs and removals of an empty package of the benchmark's own with dpkg, spread over the run (root; purged after).", valueName: "N")) var packages: Int = 0
    @Option(help: ArgumentHelp("Churn: how long each lives, in seconds (MIN-MAX).", valueName: "RANGE")) var life: String = "0.2-5"
    @Option(help: "Seed for the capture moments and the churn.") var seed: UInt64 = 1
    @Option(help: ArgumentHelp("The twin's CPU budget (`run --cpu-budget`).", valueName: "SHARE")) var cpuBudget: String = "0.2%"
    @Flag(inversion: .prefixedNo, help: "Change-driven capture in the twin (`run --no-change-driven`: ticks only, to compare).") var changeDriven = true

    struct Latency: Encodable {
        var started: Int
        var seen: Int
        var p50Millis: Double?
        var p99Millis: Double?
        var maxMillis: Double?
        /// The three slowest: when the change was made and how long the twin took to show it.
        var slowest: [String]
        enum CodingKeys: String, CodingKey { case started, seen, p50Millis = "p50_ms", p99Millis = "p99_ms", maxMillis = "max_ms", slowest }
    }

    struct Result: Encodable {
        var seconds: Double
        var interval: String
        var cpuBudget: String
        var changeDriven: Bool
        var captures: Int
        var churn: [String: Double]
        var kinds: [KindFidelity]
        var latency: [String: Latency]
        /// The twin's whole process over the captures: CPU per second and change-driven refreshes stored and held back.
        var twinCPUMicrosPerSecond: Double
        var refreshes: Double?
        var refreshesSkipped: Double?
        /// Each kind's tools' run (from the first's start to the last's end), the median over the rounds' first looks (ms).
        var toolRunMillis: [String: Int64]
        enum CodingKeys: String, CodingKey {
            case seconds, interval, cpuBudget = "cpu_budget", changeDriven = "change_driven", captures, churn, kinds, latency
            case toolRunMillis = "tool_run_ms"
            case twinCPUMicrosPerSecond = "twin_cpu_us_per_second", refreshes = "change_refreshes", refreshesSkipped = "change_refreshes_skipped"
        }
    }

    /// One run of the tools: each kind's entities and the moment it stands for (the middle of its tools' run).
    struct Capture {
        var entities: [EntityKind: [ComparableEntity]] = [:]
        var time: [EntityKind: Int64] = [:]
        /// From the start of a kind's first tool to the end of its last.
        var window: [EntityKind: ClosedRange<Int64>] = [:]
        /// Pids of the tools themselves (`ps` lists itself).
        var toolPIDs = Set<String>()
    }

    func validate() throws {
        for (name, v) in [("--processes", processes), ("--listeners", listeners), ("--connections", connections), ("--files", files)] where !(v >= 0 && v <= 10_000) {
            throw ValidationError("\(name) takes a rate from 0 to 10000 per second")
        }
        guard (0...1_000).contains(packages) else { throw ValidationError("--packages takes a count from 0 to 1000") }
        if packages > 0, let why = PackageProbe.unavailable { throw ValidationError(why) }
        _ = try lifeRange()
    }

    private func lifeRange() throws -> ClosedRange<Double> {
        let parts = life.split(separator: "-").compactMap { Double($0) }
        guard parts.count == 2, parts[0] > 0, parts[0] <= parts[1], parts[1] <= 3600 else {
            throw ValidationError("--life takes MIN-MAX in seconds, 0 < MIN <= MAX <= 3600 (got \(life))")
        }
        return parts[0]...parts[1]
    }

    func run() throws {
        let total = try TwinTime.parseDuration(duration), tick = try TwinTime.parseDuration(interval)
        let missing = GroundTruth.tools.map(\.executable).filter { !FileManager.default.isExecutableFile(atPath: $0) }
        guard missing.isEmpty else { throw CLIError("bench fidelity needs \(Set(missing).sorted().joined(separator: ", ")) (apt-get install procps iproute2 util-linux)") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hosttwin-fidelity-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // With --files the twin watches a directory of the benchmark's instead of /etc.
        let watched = dir + "-watched"
        try FileManager.default.createDirectory(atPath: watched, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: watched) }
        let child = try startRunChild(dataDir: dir, interval: interval, extra: ["--cpu-budget", cpuBudget] + (changeDriven ? [] : ["--no-change-driven"])
                                      + (files > 0 ? ["--watch", watched] : []))
        defer { if child.isRunning { child.terminate(); child.waitUntilExit() } }
        try waitForFirstTicks(dir, child: child)

        let churn = Churn(rates: .init(processes: processes, listeners: listeners, connections: connections, files: files), life: try lifeRange(),
                          fileDirectory: watched, seed: seed)
        defer { try? FileManager.default.removeItem(atPath: dir + "-probe") }
        let probe = packages > 0 ? try PackageProbe(in: dir + "-probe", count: packages, over: total) : nil
        let cpuBefore = cpuMicros(ofProcess: child.processIdentifier)
        // Ctrl-C or SIGTERM ends the captures; what the bench changed is undone below as at the end.
        let interruption = Interruption()
        churn.start()
        probe?.start()
        var rng = SeededRandom(seed: seed &+ 1)
        var rounds: [(Capture, Capture)] = []
        let begin = TwinTime.nowMillis()
        while TwinTime.nowMillis() - begin < total, interruption.pause(Int64(Double.random(in: 2...5, using: &rng) * 1000)) {
            let first = capture()
            // The second look: after the twin's next observation of the last kind captured.
            let last = first.time.values.max() ?? TwinTime.nowMillis()
            let wait = last + tick + 300 - TwinTime.nowMillis()
            if wait > 0 { usleep(UInt32(wait * 1000)) }
            rounds.append((first, capture()))
            if !output.json { FileHandle.standardError.write(Data("\rcaptures: \(rounds.count) (\((TwinTime.nowMillis() - begin) / 1000) s of \(total / 1000))".utf8)) }
        }
        let cpuSpent = Double(cpuMicros(ofProcess: child.processIdentifier) - cpuBefore) / (Double(TwinTime.nowMillis() - begin) / 1000)
        let metrics = runChildMetrics()
        churn.stop()
        let probed = probe?.stop() ?? (changes: [], failures: [])
        for failure in probed.failures { FileHandle.standardError.write(Data("package probe: \(failure)\n".utf8)) }
        if !output.json { FileHandle.standardError.write(Data("\n".utf8)) }
        // Let the twin observe the churn's end, then stop it so every tick is sealed and readable.
        usleep(UInt32((tick + 500) * 1000))
        child.terminate()
        child.waitUntilExit()
        if let signal = interruption.signal {
            throw CLIError("interrupted (signal \(signal)): the churn stopped\(probe == nil ? "" : ", the probe package purged"), the twin stopped; no figures")
        }

        let store = try StoreOptions.openForReading(dir) // with its keys: remote addresses are sealed at rest
        var kinds = GroundTruth.kinds.map { KindFidelity(kind: $0) }
        for (first, second) in rounds {
            for i in kinds.indices {
                let kind = kinds[i].kind
                guard let t = first.time[kind], let t2 = second.time[kind] else { continue }
                let twin = GroundTruth.comparable(try store.state(at: t, kinds: [kind]))
                let twinLater = GroundTruth.comparable(try store.state(at: t2, kinds: [kind]))
                let window = first.window[kind]
                let ends = try window.map { w in
                    (start: GroundTruth.comparable(try store.state(at: w.lowerBound, kinds: [kind])),
                     end: GroundTruth.comparable(try store.state(at: w.upperBound, kinds: [kind])))
                }
                kinds[i].add(FidelityCapture(kind: kind, truth: first.entities[kind] ?? [], twin: twin, twinLater: twinLater,
                                             truthLater: second.entities[kind] ?? [],
                                             excluded: kind == .processes ? first.toolPIDs.union(second.toolPIDs) : [], window: window,
                                             twinAtRunEnds: ends))
            }
        }
        let latency = try latencies(store, churn.started, packages: probed.changes, until: TwinTime.nowMillis())
        let result = Result(seconds: Double(total) / 1000, interval: interval, cpuBudget: cpuBudget, changeDriven: changeDriven, captures: rounds.count,
                            churn: ["processes_per_second": processes, "listeners_per_second": listeners, "connections_per_second": connections, "files_per_second": files,
                                    "package_installs": Double(packages)],
                            kinds: kinds, latency: latency, twinCPUMicrosPerSecond: cpuSpent,
                            refreshes: metrics["hosttwin_change_refreshes_total"], refreshesSkipped: metrics["hosttwin_change_refreshes_skipped_total"],
                            toolRunMillis: Dictionary(uniqueKeysWithValues: GroundTruth.kinds.compactMap { kind in
                                let runs = rounds.compactMap { $0.0.window[kind].map { $0.upperBound - $0.lowerBound } }.sorted()
                                return runs.isEmpty ? nil : (kind.rawValue, runs[runs.count / 2])
                            }))
        if output.json { try printJSON(result); return }
        print("\(rounds.count) captures over \(duration), twin interval \(interval), " + (changeDriven ? "change-driven, CPU budget \(cpuBudget)" : "ticks only") + (churn.rates.isZero ? ", no churn" :
            ", churn \(fmt(processes)) processes, \(fmt(listeners)) listeners, \(fmt(connections)) connections per second living \(life) s, \(fmt(files)) files written per second"))
        printTable(["KIND", "COMPARED", "AGREED", "AGREEMENT", "WITHIN THE TOOL'S RUN", "UNEXPLAINED", "MISMATCHES BY CAUSE"], kinds.map { k in
            [k.kind.rawValue, String(k.compared), String(k.agreed), String(format: "%.2f %%", k.agreement * 100),
             String(format: "%.2f %%", k.agreementWithinRun * 100), String(format: "%.2f %%", k.unexplainedShare * 100),
             MismatchCause.allCases.compactMap { c in k.causes[c].map { "\($0) \(c.rawValue)" } }.joined(separator: "; ")]
        })
        for k in kinds where !k.unexplainedExamples.isEmpty {
            print("\(k.kind.rawValue), unexplained: " + k.unexplainedExamples.joined(separator: " | "))
        }
        print(String(format: "the twin's process: %.2f ms CPU per second (%.2f %% of a core)", cpuSpent / 1000, cpuSpent / 1e4)
              + (result.refreshes.map { String(format: "; %.0f change-driven refreshes stored", $0) } ?? "")
              + (result.refreshesSkipped.map { String(format: ", %.0f held back by the CPU budget", $0) } ?? ""))
        print("the tools' runs (median): " + GroundTruth.kinds.compactMap { k in result.toolRunMillis[k.rawValue].map { "\(k.rawValue) \($0) ms" } }.joined(separator: ", "))
        for (name, l) in latency.sorted(by: { $0.key < $1.key }) {
            print("update latency, \(name): \(l.seen) of \(l.started) seen; p50 \(l.p50Millis.map { fmt($0) } ?? "-") ms, p99 \(l.p99Millis.map { fmt($0) } ?? "-") ms, max \(l.maxMillis.map { fmt($0) } ?? "-") ms" + (l.slowest.isEmpty ? "" : "; slowest: " + l.slowest.joined(separator: ", ")))
        }
    }

    private func fmt(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(format: "%.1f", v) }

    /// The twin's own counters from its /metrics (unlabelled samples only).
    private func runChildMetrics() -> [String: Double] {
        guard let (status, body) = LoopbackHTTP.get(port: runChildPort, "/metrics", timeout: 5), status == 200 else { return [:] }
        var out: [String: Double] = [:]
        for line in body.split(separator: "\n") where !line.hasPrefix("#") {
            let f = line.split(separator: " ")
            if f.count >= 2, !f[0].contains("{"), let v = Double(f[1]) { out[String(f[0])] = v }
        }
        return out
    }

    /// Waits until the twin has stored a few ticks (its first observation of everything).
    private func waitForFirstTicks(_ dir: String, child: Process) throws {
        for _ in 0..<300 {
            guard child.isRunning else { throw CLIError("hosttwin run exited at start (status \(child.terminationStatus))") }
            if let store = try? TwinStore.open(dataDir: dir, readOnly: true), let first = try? store.runs().first?.started,
               let last = try? store.lastTick(), last - first >= 3000 { return }
            usleep(100_000)
        }
        throw CLIError("hosttwin run stored no ticks within 30 s")
    }

    /// Runs every tool once; each kind's moment is the middle of its tools' run.
    private func capture() -> Capture {
        var c = Capture()
        for tool in GroundTruth.tools {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: tool.executable)
            p.arguments = tool.arguments
            var env = ProcessInfo.processInfo.environment
            env["LC_ALL"] = "C"
            p.environment = env
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardError = FileHandle.nullDevice
            let before = TwinTime.nowMillis()
            guard (try? p.run()) != nil else { continue }
            c.toolPIDs.insert(String(p.processIdentifier))
            let out = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            let after = TwinTime.nowMillis()
            guard p.terminationStatus == 0 else { continue }
            c.entities[tool.kind, default: []] += tool.parse(String(decoding: out, as: UTF8.self))
            // A kind with two tools (IPv4, IPv6) stands for the middle of both.
            let window = c.window[tool.kind].map { $0.lowerBound...after } ?? before...after
            c.window[tool.kind] = window
            c.time[tool.kind] = (window.lowerBound + window.upperBound) / 2
        }
        return c
    }

    /// For each process and listener the churn started: when the twin first showed it (the version's start);
    /// for each listener it closed, when the twin's version ended; for each install and removal of the probe
    /// package, when its version began and ended after dpkg's status file changed.
    private func latencies(_ store: TwinStore, _ started: Churn.Started, packages: [PackageProbe.Change], until end: Int64) throws -> [String: Latency] {
        guard let from = (started.processes.map(\.at) + started.listeners.map(\.at) + started.files.map(\.at) + packages.map(\.at)).min() else { return [:] }
        let versions = try store.versionsStarting(from: from - 2000, to: end, kinds: [.processes, .listeningPorts, .files, .packages])
        var processSeen: [Int64: [Int64]] = [:], portSeen: [Int64: [Int64]] = [:], fileSeen: [String: [Int64]] = [:]
        var portEnds: [Int64: [Int64]] = [:], packageStarts: [Int64] = [], packageEnds: [Int64] = []
        for v in versions {
            if v.kind == .packages, v.key == PackageProbe.key {
                packageStarts.append(v.validFrom)
                if let end = v.validTo { packageEnds.append(end) }
            }
            if v.kind == .files { fileSeen[v.key, default: []].append(v.validFrom) }
            if v.kind == .processes, let pid = v.attributes["pid"]?.intValue { processSeen[pid, default: []].append(v.validFrom) }
            if v.kind == .listeningPorts, v.attributes["address"] == .string("127.0.0.1"), let port = v.attributes["port"]?.intValue {
                portSeen[port, default: []].append(v.validFrom)
                if let end = v.validTo { portEnds[port, default: []].append(end) }
            }
        }
        // A listener's end in the twin: a version's end where no other version of its port begins (a
        // re-versioning, its owner found at a tick, ends one version where the next begins).
        for (port, ends) in portEnds {
            let starts = Set(portSeen[port] ?? [])
            portEnds[port] = ends.filter { !starts.contains($0) }
        }
        // A pid or port may be reused later: the first version starting after the start, less a tick's skew
        // (a version starts at its tick's time, read a moment after it), as a delay from the start.
        func first(_ starts: [Int64]?, after t: Int64) -> Int64? { starts?.filter { $0 >= t - 1000 }.min().map { $0 - t } }
        func summary(_ delays: [(at: Int64, delay: Int64?)]) -> Latency {
            let seen = delays.compactMap { $0.delay }.map { Double(max(0, $0)) }.sorted()
            func q(_ p: Double) -> Double? { seen.isEmpty ? nil : seen[min(seen.count - 1, Int((p * Double(seen.count)).rounded(.up)) - 1)] }
            let slowest = delays.compactMap { d in d.delay.map { (at: d.at, delay: $0) } }.sorted { $0.delay > $1.delay }.prefix(3)
                .map { "\(TwinTime.rfc3339($0.at)) +\($0.delay) ms" }
            return Latency(started: delays.count, seen: seen.count, p50Millis: q(0.5), p99Millis: q(0.99), maxMillis: seen.last, slowest: slowest)
        }
        var out: [String: Latency] = [:]
        if !started.processes.isEmpty {
            out["process started"] = summary(started.processes.map { p in (p.at, first(processSeen[Int64(p.pid)], after: p.at)) })
        }
        if !started.listeners.isEmpty {
            out["port opened"] = summary(started.listeners.map { l in (l.at, first(portSeen[Int64(l.port)], after: l.at)) })
        }
        if !started.closedListeners.isEmpty {
            out["port closed"] = summary(started.closedListeners.map { l in (l.at, first(portEnds[Int64(l.port)], after: l.at)) })
        }
        if !started.files.isEmpty {
            out["file written"] = summary(started.files.map { f in (f.at, first(fileSeen[f.path], after: f.at)) })
        }
        if !packages.isEmpty {
            out["package installed"] = summary(packages.filter(\.installed).map { c in (c.at, first(packageStarts, after: c.at)) })
            out["package removed"] = summary(packages.filter { !$0.installed }.map { c in (c.at, first(packageEnds, after: c.at)) })
        }
        return out
    }
}

/// SIGINT and SIGTERM as a flag a long benchmark looks at, so it can undo what it did to the host (the churn,
/// a package installed) before it exits, instead of dying with it done. The signals' default action comes back
/// when it is released.
final class Interruption: @unchecked Sendable {
    private let received = Mutex<Int32?>(nil)
    private var sources: [any DispatchSourceSignal] = [] // set once in init

    init() {
        for sig in [SIGINT, SIGTERM] {
            Glibc.signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in self?.received.withLock { $0 = $0 ?? sig } }
            source.resume()
            sources.append(source)
        }
    }

    deinit {
        for s in sources { s.cancel() }
        for sig in [SIGINT, SIGTERM] { Glibc.signal(sig, SIG_DFL) }
    }

    /// The first signal received; nil while none was.
    var signal: Int32? { received.withLock { $0 } }

    /// Sleeps `ms` in steps of 50 ms; false as soon as a signal came.
    func pause(_ ms: Int64) -> Bool {
        let until = TwinTime.nowMillis() + ms
        while signal == nil, TwinTime.nowMillis() < until { usleep(50_000) }
        return signal == nil
    }
}
