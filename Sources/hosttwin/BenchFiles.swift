import ArgumentParser
import Foundation
import TwinCollectors
import TwinCore

/// `hosttwin bench files`: what configuration history costs — the first walk, a quiet tick, a tick with a
/// change, the walk without inotify, and the SUID scan.
struct BenchFiles: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "files",
        abstract: "The cost of the files collector: first walk, quiet and changed ticks with inotify, walks without it, the SUID scan.",
        discussion: "Runs the collector as `run` does over --watch (default /etc) plus a scratch directory of its own where it writes the changes (nothing under the watched paths is touched). Times are CPU time of this thread (the SUID scan's: of the scan alone, which `run` does on a background queue every 15 minutes)."
    )
    @Option(name: .customLong("watch"), help: ArgumentHelp("Watched paths (repeatable; default /etc).", valueName: "PATH")) var watch: [String] = []
    @Option(name: .customLong("suid-path"), help: ArgumentHelp("SUID scan paths (repeatable; default the collector's).", valueName: "PATH")) var suidPaths: [String] = []
    @Option(help: "Ticks of each kind measured (the median is reported).") var ticks = 200
    @OptionGroup var output: OutputOptions

    struct Result: Encodable {
        var entries: Int
        var firstWalkMillis: Double
        var quietTickMicros: Double
        var changedTickMicros: Double
        var changeSeenAtNextTick: Bool
        var walkWithoutInotifyMillis: Double
        var suidScanMillis: Double
        var suidFiles: Int
        var suidTruncated: Bool
        /// SUID changes told by the kernel (fanotify; nil where it is not available here).
        var suidEvents: SUIDEvents?
        /// CPU per second of steady state with inotify: a quiet tick each second, the 10-minute safety walk,
        /// the SUID scan every 15 minutes (every 6 hours where the kernel tells the changes).
        var steadyCPUPercentOfOneCore: Double
        enum CodingKeys: String, CodingKey {
            case entries, firstWalkMillis = "first_walk_ms", quietTickMicros = "quiet_tick_us", changedTickMicros = "changed_tick_us"
            case changeSeenAtNextTick = "change_seen_at_next_tick", walkWithoutInotifyMillis = "walk_without_inotify_ms"
            case suidScanMillis = "suid_scan_ms", suidFiles = "suid_files", suidTruncated = "suid_truncated", suidEvents = "suid_events"
            case steadyCPUPercentOfOneCore = "steady_cpu_percent"
        }
    }
    struct SUIDEvents: Encodable {
        /// A tick with no event on the SUID paths' filesystems (one read of the queue).
        var quietTickMicros: Double
        /// Files created (not SUID) under an SUID path between two ticks, ten to a new directory, and the next
        /// tick's CPU per file.
        var filesCreated: Int
        var perFileMicros: Double
        /// The same outside the SUID paths (on their filesystem): the events are read and their directories named.
        var elsewherePerFileMicros: Double
        /// What the mark costs other programs: CPU of this thread to create and remove a file outside the SUID
        /// paths on their filesystem, before the collector marked it and while the mark is there.
        var writerMicrosWithoutMark: Double
        var writerMicrosWithMark: Double
        /// A `chmod u+s` was seen at the next tick.
        var chmodSeenAtNextTick: Bool
        enum CodingKeys: String, CodingKey {
            case quietTickMicros = "quiet_tick_us", filesCreated = "files_created", perFileMicros = "per_file_us"
            case elsewherePerFileMicros = "elsewhere_per_file_us", chmodSeenAtNextTick = "chmod_seen_at_next_tick"
            case writerMicrosWithoutMark = "writer_us_without_mark", writerMicrosWithMark = "writer_us_with_mark"
        }
    }

    /// The SUID paths followed with fanotify on a scratch tree: a quiet tick, a tick after `files` files were
    /// created, a chmod u+s. Nil where fanotify is not available.
    func suidEvents(scratch: String, files: Int = 2_000) throws -> SUIDEvents? {
        let elsewhere = scratch + "-elsewhere"
        for d in [scratch, elsewhere] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        defer { for d in [scratch, elsewhere] { try? FileManager.default.removeItem(atPath: d) } }
        let config = CollectorConfig(watchPaths: [], suidPaths: [scratch])
        /// CPU of this thread per file created and removed (the median of five rounds of 2,000).
        func writer() -> Double {
            var rounds: [Double] = []
            for _ in 0..<5 {
                let start = Double(threadCPUMicros())
                for i in 0..<2_000 {
                    let path = elsewhere + "/w\(i)"
                    let fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o644)
                    if fd >= 0 { close(fd) }
                    unlink(path)
                }
                rounds.append((Double(threadCPUMicros()) - start) / 2_000)
            }
            return rounds.sorted()[2]
        }
        let withoutMark = writer()
        let collector = FileCollector(), reader = FileReader()
        var t = TwinTime.nowMillis()
        func tick() throws -> (micros: Double, observation: Observation) {
            t += 1000
            var ctx = CollectContext(paths: HostPaths(), reader: reader, config: config, observation: Observation(timestamp: t))
            let start = Double(threadCPUMicros())
            _ = try collector.collect(&ctx)
            return (Double(threadCPUMicros()) - start, ctx.observation)
        }
        // The first scan (of an empty tree) runs in the background; once it is in, the twin is told or not.
        var told = false
        for _ in 0..<500 where !told {
            told = try tick().observation.samples.first { $0.key.metric == "hosttwin_files_suid_fanotify" }?.value == 1
            if !told { usleep(10_000) }
        }
        guard told else { return nil }
        let withMark = writer()
        _ = try tick() // the writer's events, read and dropped
        var quiet: [Double] = []
        for _ in 0..<max(ticks, 1) { quiet.append(try tick().micros) }
        // As a build or a checkout writes: directories of ten files each.
        func write(under dir: String) throws {
            for i in 0..<files {
                if i % 10 == 0 { try FileManager.default.createDirectory(atPath: dir + "/d\(i / 10)", withIntermediateDirectories: false) }
                FileManager.default.createFile(atPath: dir + "/d\(i / 10)/f\(i)", contents: nil)
            }
        }
        try write(under: elsewhere)
        let outside = try tick().micros
        try write(under: scratch)
        let churn = try tick().micros
        chmod(scratch + "/d0/f0", 0o4755)
        let seen = try tick().observation.entities[.files]?.contains { $0.key == scratch + "/d0/f0" && $0.attributes["mode"] == "4755" } == true
        return SUIDEvents(quietTickMicros: quiet.sorted()[quiet.count / 2], filesCreated: files, perFileMicros: churn / Double(files),
                          elsewherePerFileMicros: outside / Double(files), writerMicrosWithoutMark: withoutMark, writerMicrosWithMark: withMark,
                          chmodSeenAtNextTick: seen)
    }

    func run() throws {
        let scratch = NSTemporaryDirectory() + "hosttwin-bench-files-\(getpid())"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let watched = try FilesCommand.watchList(watch.isEmpty ? ["/etc"] : watch) + [scratch]
        let config = CollectorConfig(watchPaths: watched, suidPaths: [])
        let reader = FileReader()
        var t = TwinTime.nowMillis()
        func tick(_ c: FileCollector) throws -> (micros: Double, entities: [Entity]?) {
            t += 1000
            var ctx = CollectContext(paths: HostPaths(), reader: reader, config: config, observation: Observation(timestamp: t))
            let start = Double(threadCPUMicros())
            _ = try c.collect(&ctx)
            return (Double(threadCPUMicros()) - start, ctx.observation.entities[.files])
        }
        func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

        let collector = FileCollector()
        let first = try tick(collector)
        let entries = first.entities?.count ?? 0
        var quiet: [Double] = [], changed: [Double] = []
        var seen = true
        for i in 0..<max(ticks, 1) {
            quiet.append(try tick(collector).micros)
            try "setting = \(i)\n".write(toFile: scratch + "/app.conf", atomically: true, encoding: .utf8)
            let c = try tick(collector)
            changed.append(c.micros)
            seen = seen && c.entities?.contains { $0.key == scratch + "/app.conf" && $0.attributes["content"] == .string("setting = \(i)\n") } == true
        }
        // Without inotify: the walk every minute (nothing changed; every entry is looked at again).
        let walker = FileCollector(inotify: false)
        _ = try tick(walker)
        var walks: [Double] = []
        for _ in 0..<5 {
            t += 60_000
            walks.append(try tick(walker).micros)
        }
        let suidRoots = suidPaths.isEmpty ? CollectorConfig.defaultSUIDPaths : suidPaths
        let s0 = Double(threadCPUMicros())
        let suid = FileCollector.scanSUID(suidRoots, paths: HostPaths())
        let suidMicros = Double(threadCPUMicros()) - s0
        let events = try suidEvents(scratch: scratch + "-suid")
        let walk = median(walks)
        let steady = median(quiet) + (events?.quietTickMicros ?? 0) + walk / 600 + suidMicros / (events == nil ? 900 : 21_600)
        let r = Result(entries: entries, firstWalkMillis: first.micros / 1000, quietTickMicros: median(quiet), changedTickMicros: median(changed),
                       changeSeenAtNextTick: seen, walkWithoutInotifyMillis: walk / 1000, suidScanMillis: suidMicros / 1000,
                       suidFiles: suid.files, suidTruncated: suid.truncated, suidEvents: events, steadyCPUPercentOfOneCore: steady / 10_000)
        if output.json { try printJSON(r); return }
        print("watched entries            \(r.entries) (\(watched.dropLast().joined(separator: ", ")) and a scratch directory)")
        print("first walk                 \(String(format: "%.1f", r.firstWalkMillis)) ms (reads and hashes everything)")
        print("quiet tick (inotify)       \(String(format: "%.1f", r.quietTickMicros)) µs")
        print("tick with a changed file   \(String(format: "%.1f", r.changedTickMicros)) µs (seen at the next tick: \(r.changeSeenAtNextTick ? "yes" : "NO"))")
        print("walk without inotify       \(String(format: "%.2f", r.walkWithoutInotifyMillis)) ms (every minute where inotify is missing; every 10 minutes otherwise)")
        let every = r.suidEvents == nil ? "every 15 minutes" : "every 6 hours (changes told by the kernel)"
        print("SUID scan                  \(String(format: "%.1f", r.suidScanMillis)) ms, \(r.suidFiles) files\(r.suidTruncated ? " (stopped at the entry budget)" : "") — \(every), in the background")
        if let e = r.suidEvents {
            print("SUID paths, quiet tick     \(String(format: "%.1f", e.quietTickMicros)) µs (fanotify: one read)")
            print("a file made and removed    \(String(format: "%.2f", e.writerMicrosWithoutMark)) µs of the writer's CPU without the mark, \(String(format: "%.2f", e.writerMicrosWithMark)) µs with it (what the mark costs other programs)")
            print("SUID paths, files created  \(String(format: "%.2f", e.perFileMicros)) µs per file (\(e.filesCreated) between two ticks, ten to a directory; \(String(format: "%.2f", e.elsewherePerFileMicros)) µs outside the SUID paths); chmod u+s seen at the next tick: \(e.chmodSeenAtNextTick ? "yes" : "NO")")
        } else {
            print("SUID changes               not told by the kernel here (fanotify needs root and Linux 5.9)")
        }
        print("steady state               \(String(format: "%.4f", r.steadyCPUPercentOfOneCore)) % of one core")
    }
}
