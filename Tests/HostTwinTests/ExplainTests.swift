import Foundation
import Testing
import TwinAnalytics
import TwinCore
import TwinStorage

/// `hosttwin explain` and the fast memory-leak warning on stores whose cause is known.
@Suite struct ExplainTests {
    /// Five minutes of a host at 1 s: a process "burner" starts at 200 s and CPU pressure follows;
    /// host-wide CPU time and memory pressure move with it, twenty noise series and a steady daemon do not.
    @Test func theCauseRanksFirstAndItsOwnResourceIsListedApart() throws {
        let t0: Int64 = 1_800_000_000_000
        var rng = SeededRandom(seed: 11)
        var user = 0.0, waiting = 0.0, memoryWaiting = 0.0, burner = 0.0, daemon = 0.0
        let (store, dir) = try storeOfTicks("hosttwin-explain", t0: t0, interval: 1_000, ticks: 300) { i, t in
            var obs = Observation(timestamp: t)
            let busy = i >= 200
            user += busy ? 1.9 : 0.1 + Double.random(in: 0...0.05, using: &rng)
            waiting += busy ? 0.6 + Double.random(in: 0...0.1, using: &rng) : 0
            memoryWaiting += busy ? 0.05 : 0
            daemon += 0.01
            obs.counter("node_cpu_seconds_total", Labels(["cpu": "0", "mode": "user"]), user)
            obs.counter("node_pressure_cpu_waiting_seconds_total", .empty, waiting)
            obs.counter("node_pressure_memory_waiting_seconds_total", .empty, memoryWaiting)
            for k in 0..<20 { obs.add("noise_\(k)", .empty, Double.random(in: 0...100, using: &rng)) }
            var processes = [Entity(kind: .processes, key: "100@1", attributes: ["name": "sshd", "pid": .int(100)])]
            obs.counter("hosttwin_process_cpu_seconds_total", Labels(["name": "sshd", "pid": "100"]), daemon)
            if busy {
                burner += 1.8
                processes.append(Entity(kind: .processes, key: "4242@19900", attributes: ["name": "burner", "pid": .int(4242)]))
                if i >= 205 { obs.counter("hosttwin_process_cpu_seconds_total", Labels(["name": "burner", "pid": "4242"]), burner) }
            }
            obs.set(.processes, processes)
            return obs
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let target = try #require(try store.seriesCatalog().first { $0.key.metric == "node_pressure_cpu_waiting_seconds_total" })
        let e = try Explainer.explain(store: store, target: target, at: t0 + 299_000, window: 900_000)
        let top = e.ranked.prefix(3)
        #expect(top.first?.process == "burner", "\(e.ranked)")
        #expect(top.contains { $0.kind == "state" && $0.subject == "processes burner" }, "\(e.ranked)")
        #expect(!top.contains { $0.subject.hasPrefix("noise_") || $0.process == "sshd" }, "\(e.ranked)")
        #expect(e.ranked.contains { $0.subject.hasPrefix("node_cpu_seconds_total") })
        #expect(e.sameResource.map(\.subject) == ["node_pressure_memory_waiting_seconds_total"], "\(e.sameResource)")
        #expect(e.onset == TwinTime.rfc3339(t0 + 200_000) || e.onset == TwinTime.rfc3339(t0 + 201_000), "\(e.onset)")
        // Nothing before the store began, and a target that did not move, are refused.
        #expect(throws: TwinError.self) { try Explainer.explain(store: store, target: target, at: t0 + 5_000, window: 900_000) }
        #expect(throws: TwinError.self) { try Explainer.explain(store: store, target: target, at: t0 + 150_000, window: 60_000) }
    }

    /// A process growing evenly is a leak suspect within two minutes; one growing in phases (a compiler)
    /// and one that grew and stopped are not — whether the processes are observed every second or every 5
    /// or 15 s (a relaxed or configured interval: 8 samples in the last two minutes).
    @Test(arguments: [1_000, 5_000, 15_000] as [Int64])
    func aSteadyLeakIsFlaggedWithinMinutes(interval: Int64) throws {
        let t0: Int64 = 1_800_000_000_000
        let leaker = Labels(["name": "leaky", "pid": "7"]), compiler = Labels(["name": "cc1", "pid": "8"]), cache = Labels(["name": "cache", "pid": "9"])
        let (store, dir) = try storeOfTicks("hosttwin-leak", t0: t0, interval: interval, ticks: Int(199_000 / interval) + 1) { _, t in
            let second = Int((t - t0) / 1000)
            var obs = Observation(timestamp: t)
            obs.add("hosttwin_process_resident_memory_bytes", leaker, 100e6 + Double(max(0, second - 60)) * 8e6)
            obs.add("hosttwin_process_resident_memory_bytes", compiler, 100e6 + Double(second / 40) * 300e6)
            obs.add("hosttwin_process_resident_memory_bytes", cache, 100e6 + Double(min(second, 90)) * 8e6)
            return obs
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let catalog = try store.seriesCatalog()
        // 60 s into the leak: too early (the cache, growing evenly for 90 s by then, is a suspect while it
        // grows); 140 s: flagged, with its series, and the cache no more.
        let early = try AnomalyScan.warnings(store: store, catalog: catalog, from: t0, to: t0 + 120_000)
        #expect(!early.contains { $0.kind == "memory leak suspect" && $0.subject.contains("leaky") }, "\(early)")
        let late = try AnomalyScan.warnings(store: store, catalog: catalog, from: t0, to: t0 + 199_000).filter { $0.kind == "memory leak suspect" }
        #expect(late.map(\.series) == [SeriesKey("hosttwin_process_resident_memory_bytes", leaker).description], "\(late)")
    }

    /// A slow leak (40 → 70 MB over 75 minutes, rising every minute) matters by the host's memory: on
    /// 1 GiB it would take a tenth of it within a day and is a suspect; on 23 GiB it is not.
    @Test func aSlowLeakIsJudgedByTheHostsMemory() throws {
        let t0: Int64 = 1_800_000_000_000
        for (total, flagged) in [(1.0, true), (23.0, false)] {
            let (store, dir) = try storeOfTicks("hosttwin-slowleak", t0: t0, interval: 10_000, ticks: 450) { i, t in
                var obs = Observation(timestamp: t)
                obs.add("node_memory_MemTotal_bytes", .empty, total * 1_073_741_824)
                obs.add("hosttwin_process_resident_memory_bytes", Labels(["name": "bench", "pid": "7"]), 40e6 + Double(i) * 30e6 / 450)
                return obs
            }
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let warnings = try AnomalyScan.warnings(store: store, catalog: try store.seriesCatalog(), from: t0, to: t0 + 4_500_000)
            #expect(warnings.contains { $0.kind == "memory leak suspect" } == flagged, "\(total) GiB: \(warnings)")
        }
    }
}
