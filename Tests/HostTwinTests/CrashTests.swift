import Foundation
import Testing
import TwinCore
@testable import TwinStorage

/// `kill -9` of `run` and of `import` at random moments, restarting each time. Afterwards the store
/// opens, passes `check`, holds every sample a reader saw before each kill, nothing twice, and a
/// consistent state history. The suite runs a few rounds; `scripts/crash-test.sh` runs 100 of each.
@Suite(.serialized) struct CrashTests {
    static var rounds: Int { Int(ProcessInfo.processInfo.environment["HOSTTWIN_CRASH_ROUNDS"] ?? "") ?? 4 }

    func times(_ dir: String, _ key: SeriesKey) throws -> [Int64] {
        try TwinStore.open(dataDir: dir, readOnly: true).samples(key, from: 0, to: .max)?.map(\.0) ?? []
    }

    /// Ticks every 100 ms with 1-second head windows, so kills land in commits, cuts, seals and compactions.
    @Test func killDashNineDuringRun() throws {
        guard EndToEndTests.binary != nil else { Issue.record("hosttwin binary not built"); return }
        let dir = try temporaryDirectory("crash-run")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let load = SeriesKey("node_load1")
        var acknowledged = Set<Int64>()
        for round in 0..<Self.rounds {
            let run = try EndToEndTests.startRun(dir, port: Int.random(in: 40_001...60_000), extra: ["--interval", "100ms", "--head-window", "1s"])
            let before = acknowledged.count
            #expect(try EndToEndTests.eventually(30) { (try? times(dir, load).count) ?? 0 > before }, "round \(round): run stores ticks")
            usleep(UInt32.random(in: 0...2_000_000))
            let seen = (try? times(dir, load)) ?? []
            kill(run.processIdentifier, SIGKILL)
            run.waitUntilExit()
            acknowledged.formUnion(seen)
        }
        let final = try times(dir, load)
        #expect(acknowledged.isSubset(of: Set(final)), "\(acknowledged.subtracting(final).count) acknowledged ticks lost")
        #expect(zip(final, final.dropFirst()).allSatisfy { $0 < $1 }, "ticks strictly increasing, none duplicated")
        let report = try StoreDoctor.check(dataDir: dir)
        #expect(report.ok, "\(report.problems.map { "\($0.file): \($0.detail)" })")
        let s = try TwinStore.open(dataDir: dir, readOnly: true)
        let state = try s.state(at: TwinTime.nowMillis())
        #expect(Set(state.map { "\($0.kind)/\($0.key)" }).count == state.count, "one open version per entity")
        #expect(try s.events(from: 0, to: .max).filter { $0.type == .started }.count == Self.rounds)
    }

    /// An import killed at random moments and run again ends with exactly the file's samples.
    @Test func killDashNineDuringImport() throws {
        guard let binary = EndToEndTests.binary else { Issue.record("hosttwin binary not built"); return }
        let dir = try temporaryDirectory("crash-import")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + ".prom"
        defer { unlink(file) }
        let (seriesCount, points) = (50, 4000)
        var text = "# TYPE crash_total counter\n"
        for i in 0..<points {
            for s in 0..<seriesCount { text += "crash_total{s=\"\(s)\"} \(i * (s + 1)) \(1_700_000_000_000 + Int64(i) * 1000)\n" }
        }
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        var lastSeen = 0
        for _ in 0..<Self.rounds {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = ["import", file, "--data-dir", dir, "--quiet", "--head-window", "1m"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            usleep(UInt32.random(in: 50_000...1_500_000))
            let seen = (try? TwinStore.open(dataDir: dir, readOnly: true).samples(SeriesKey("crash_total", Labels(["s": "7"])), from: 0, to: .max)?.count) ?? 0
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            // Killed before it made the store (a loaded machine): nothing seen, nothing to keep.
            let after = (try? TwinStore.open(dataDir: dir, readOnly: true).samples(SeriesKey("crash_total", Labels(["s": "7"])), from: 0, to: .max)?.count) ?? 0
            #expect(after >= seen && after >= lastSeen, "samples seen before the kill are still there")
            lastSeen = after
        }
        let done = try EndToEndTests.cli(["import", file, "--data-dir", dir, "--quiet"])
        #expect(done.status == 0, "\(done.stdout) \(done.stderr)")
        let store = try TwinStore.open(dataDir: dir, readOnly: true)
        for s in [0, 7, 49] {
            let got = try #require(try store.samples(SeriesKey("crash_total", Labels(["s": "\(s)"])), from: 0, to: .max))
            #expect(got.map(\.1) == (0..<points).map { Double($0 * (s + 1)) }, "series \(s): every sample exactly once")
        }
        #expect(try StoreDoctor.check(dataDir: dir).ok)
    }
}
