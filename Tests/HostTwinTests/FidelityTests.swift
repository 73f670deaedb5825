import CProcessTuning
import Foundation
import Glibc
import Testing
import TwinAnalytics
import TwinCore
@testable import TwinRuntime
import TwinStorage

/// The ground-truth parsers of `bench fidelity` on output captured from this development VM (procps 4.0.2,
/// iproute2 6.1, util-linux 2.38, dpkg 1.21), with malformed variants, and the mismatch classification.
@Suite struct FidelityTests {
    @Test func parsesPSIncludingNamesWithSpacesAndKernelWorkers() {
        let text = """
                1     0     0 process_api
                2     0     0 kthreadd
               27     2     0 kworker/1:0-events
             4242     1  1000 tmux: server
               44     2     0 kworker/1:1H+kblockd
            garbage line
              12x     1     0 bad
               13     1
            """
        let p = GroundTruth.parsePS(text)
        #expect(p.map(\.key) == ["1", "2", "27", "4242", "44"])
        #expect(p[2].attributes["name"] == "kworker/1:0")
        #expect(p[4].attributes["name"] == "kworker/1:1H", "a worker serving its queue right now")
        #expect(p[3].attributes == ["ppid": "1", "uid": "1000", "name": "tmux: server"])
    }

    @Test func parsesSSListenersAndConnectionsWithCanonicalAddresses() {
        let listen4 = """
            tcp LISTEN 0      256    127.0.0.1:9977 0.0.0.0:* users:(("hosttwin-rec",pid=17665,fd=22),("hosttwin-rec",pid=17600,fd=9))
            tcp LISTEN 0      128      0.0.0.0:2024 0.0.0.0:*
            udp UNCONN 0      0      127.0.0.53%lo:53 0.0.0.0:*
            udp ESTAB  0      0      127.0.0.1:5000 127.0.0.1:6000
            tcp LISTEN 0
            """
        let l = GroundTruth.parseSS(listen4, family: "ipv4", listening: true)
        #expect(l.map(\.key) == ["tcp/127.0.0.1/9977", "tcp/0.0.0.0/2024", "udp/127.0.0.53/53"])
        #expect(l[0].attributes["pid"] == "17600")
        #expect(l[1].attributes["pid"] == nil)
        let listen6 = "tcp LISTEN 0 128 [0:0::1]:22 [::]:*\ntcp LISTEN 0 128 *:80 *:*\n"
        #expect(GroundTruth.parseSS(listen6, family: "ipv6", listening: true).map(\.key) == ["tcp/::1/22", "tcp/::/80"])
        let established = """
            tcp 0 0 127.0.0.1:43350 127.0.0.1:40963
            udp 0 0 [::ffff:127.0.0.1]:5000 [::ffff:127.0.0.1]:6000
            udp 0 0 *:68 10.0.0.1:67
            udp 0 0 *:546 [fe80::1]:547
            tcp 0 0 nonsense
            """
        // The family (`ss -4`/`-6` chose the sockets) only says what a `*` address is.
        #expect(GroundTruth.parseSS(established, family: "ipv6", listening: false).map(\.key)
                == ["tcp/127.0.0.1:43350/127.0.0.1:40963", "udp/::ffff:127.0.0.1:5000/::ffff:127.0.0.1:6000", "udp/:::68/10.0.0.1:67", "udp/:::546/fe80::1:547"])
        // One run for both families: a wildcard's family is its peer's.
        #expect(GroundTruth.parseSS(established, family: nil, listening: false).map(\.key).dropFirst(2)
                == ["udp/0.0.0.0:68/10.0.0.1:67", "udp/:::546/fe80::1:547"])
    }

    @Test func parsesFindmntKeepingTheTopmostMountAndUnescaping() {
        let text = """
            / /dev/vda ext4 rw,relatime
            /dev/pts devpts devpts rw,relatime
            /dev/pts devpts devpts rw,nosuid,relatime
            /mnt/with\\x20space tmpfs tmpfs ro,relatime
            too few
            """
        let m = Dictionary(uniqueKeysWithValues: GroundTruth.parseFindmnt(text).map { ($0.key, $0.attributes) })
        #expect(m.count == 3)
        #expect(m["/dev/pts"]?["options"] == "rw,nosuid,relatime")
        #expect(m["/mnt/with space"]?["fstype"] == "tmpfs")
    }

    @Test func parsesDpkgQueryInstalledOnly() {
        let text = "adduser\tall\t3.134\tii \nlibfoo\tamd64\t1.0-1\trc \nheld\tamd64\t2.0\thi \nbroken\n"
        let p = GroundTruth.parseDpkgQuery(text)
        #expect(p.map(\.key) == ["adduser:all", "held:amd64"])
        #expect(p[0].attributes["version"] == "3.134")
    }

    @Test func parsesIPLinkJSONAndRefusesOtherText() {
        let text = #"[{"ifindex":1,"ifname":"lo","mtu":65536,"operstate":"UNKNOWN","address":"00:00:00:00:00:00"},{"ifname":"eth0","mtu":1400,"operstate":"UP","address":"02:fc:00:00:00:01"},{"mtu":1}]"#
        let l = GroundTruth.parseIPLink(text)
        #expect(l.map(\.key) == ["lo", "eth0"])
        #expect(l[1].attributes == ["mtu": "1400", "operstate": "up", "address": "02:fc:00:00:00:01"])
        #expect(GroundTruth.parseIPLink("{not json").isEmpty)
        #expect(GroundTruth.parseIPLink(#"{"ifname":"x"}"#).isEmpty)
    }

    @Test func theTwinsVersionsTakeTheSameForm() {
        let v = [
            EntityVersion(kind: .listeningPorts, key: "tcp/::1/22", attributes: ["protocol": "tcp", "address": "0:0::1", "port": .int(22), "pid": .null], validFrom: 0, validTo: nil),
            EntityVersion(kind: .processes, key: "7@100", attributes: ["pid": .int(7), "ppid": .int(1), "uid": .int(0), "name": "sshd"], validFrom: 0, validTo: nil),
        ]
        let c = GroundTruth.comparable(v)
        #expect(c[0].key == "tcp/::1/22" && c[0].attributes.isEmpty)
        #expect(c[1] == ComparableEntity(kind: .processes, key: "7", attributes: ["ppid": "1", "uid": "0", "name": "sshd"], since: 0))
    }

    /// Each cause is decided from the second look; anything else is unexplained.
    @Test func classifiesMismatchesByASecondLook() {
        func e(_ key: String, _ name: String = "x") -> ComparableEntity { ComparableEntity(kind: .processes, key: key, attributes: ["name": name]) }
        var k = KindFidelity(kind: .processes)
        k.add(FidelityCapture(kind: .processes,
                              truth: [e("1"), e("2"), e("4"), e("5", "new"), e("6"), e("9")],
                              twin: [e("1"), e("3"), e("5", "old"), e("7"), e("8", "a")],
                              twinLater: [e("1"), e("2"), e("5", "new"), e("7")],
                              truthLater: [e("1"), e("2"), e("6"), e("7"), e("8")],
                              excluded: ["9"]))
        // 1 agrees; 2 appeared; 3 ended; 4 short-lived; 5 changed; 6 still there but the twin never had it;
        // 7 in the twin, never seen by the tool; 8 in the twin, gone from the twin later while the tool still sees it.
        #expect(k.compared == 8)
        #expect(k.agreed == 1)
        #expect(k.causes == [.appeared: 1, .ended: 1, .shortLived: 1, .changed: 1, .unexplained: 3])
        #expect(k.unexplainedExamples.count == 3)
        #expect(abs(k.agreement - 1.0 / 8) < 1e-12)
        // A version the twin began while the tool ran: neither side is wrong.
        var during = KindFidelity(kind: .processes)
        var fresh = e("10"); fresh.since = 1_050
        var old = e("11"); old.since = 900
        during.add(FidelityCapture(kind: .processes, truth: [], twin: [fresh, old], twinLater: [fresh, old], truthLater: [fresh, old], window: 1_000...1_100))
        #expect(during.causes == [.duringCapture: 1, .unexplained: 1])
        #expect(during.agreedWithinRun == 0)
        // The twin saw 20 open and 21 close while the tool ran: the tool's view of each is the twin's at one
        // end of the run. 22 changed too, but the tool saw neither end's view; 23 did not change in the twin.
        // 24 came and went inside the run (absent at both ends): the tool, not listing it, saw one end's view.
        var run = KindFidelity(kind: .processes)
        run.add(FidelityCapture(kind: .processes, truth: [e("20"), e("22", "c"), e("23")], twin: [e("21"), e("22", "a"), e("24")],
                                twinLater: [], truthLater: [], window: 1_000...1_100,
                                twinAtRunEnds: (start: [e("21"), e("22", "a")], end: [e("20"), e("22", "b")])))
        #expect(run.compared == 5 && run.agreed == 0 && run.agreedWithinRun == 3)
        #expect(run.causes[.duringCapture] == 3 && run.causes[.ended] == nil && abs(run.agreementWithinRun - 0.6) < 1e-12)
        // 30 was re-versioned inside the run (its owner added) and 31 appeared in it: only 31 changed while
        // the tool ran; the tool missing 30, which the twin held throughout, is unexplained.
        var reversioned = KindFidelity(kind: .connections)
        func c(_ key: String, _ attributes: [String: String] = [:], since: Int64) -> ComparableEntity {
            ComparableEntity(kind: .connections, key: key, attributes: attributes, since: since)
        }
        reversioned.add(FidelityCapture(kind: .connections, truth: [], twin: [c("30", ["pid": "7"], since: 1_050), c("31", since: 1_060)],
                                        twinLater: [c("30", since: 1_050)], truthLater: [], window: 1_000...1_100,
                                        twinAtRunEnds: (start: [c("30", since: 900)], end: [c("30", ["pid": "7"], since: 1_050), c("31", since: 1_060)])))
        #expect(reversioned.causes == [.duringCapture: 1, .unexplained: 1] && reversioned.agreedWithinRun == 1)
    }

    /// Ticks stored against ticks due: a pause inside a run is "not stored", the time between two runs "not running",
    /// the same before and after the head log is sealed.
    @Test func completenessCountsStoredTicksAndNamesTheGaps() throws {
        let dir = try temporaryDirectory("completeness")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TwinStore.open(dataDir: dir)
        let t0: Int64 = 1_700_000_000_000
        func ticks(_ w: TwinWriter, _ range: Range<Int64>, skipping: Range<Int64> = 0..<0) throws {
            for i in range where !skipping.contains(i) {
                var o = Observation(timestamp: t0 + i * 1000)
                o.add("m", .empty, Double(i))
                // Two collectors' runs: "cpu" always succeeds, "thermal" every third tick only, "disk" every fifth tick.
                o.add("node_scrape_collector_success", Labels(["collector": "cpu"]), 1)
                o.add("node_scrape_collector_success", Labels(["collector": "thermal"]), i % 3 == 0 ? 1 : 0)
                if i % 5 == 0 { o.add("node_scrape_collector_success", Labels(["collector": "disk"]), 1) }
                _ = try w.commit(o)
            }
        }
        let first = TwinWriter(store: store, policy: .testing)
        try first.begin(now: t0, interval: 1000)
        try ticks(first, 0..<60, skipping: 20..<25)
        try first.finish(now: t0 + 59_500)
        let second = TwinWriter(store: store, policy: .testing)
        try second.begin(now: t0 + 90_000, interval: 1000)
        try ticks(second, 90..<120)
        for sealed in [false, true] {
            if sealed { try second.finish(now: t0 + 120_000) }
            let c = try #require(try store.completeness(from: t0, to: t0 + 119_000))
            #expect(c.expected == 119, "sealed: \(sealed)")
            #expect(c.stored == 85)
            #expect(c.gaps.map(\.reason) == ["not stored", "not running"])
            #expect(c.gaps.map(\.missing) == [5, 30])
        }
        // Per collector, within the stored ticks (the head and the sealed chunks alike).
        let runs = try store.collectorCompleteness(from: t0, to: t0 + 119_000)
        #expect(runs == [CollectorCompleteness(collector: "cpu", runs: 85, succeeded: 85),
                         CollectorCompleteness(collector: "disk", runs: 17, succeeded: 17),
                         CollectorCompleteness(collector: "thermal", runs: 85, succeeded: 28)])
        // A window inside one run without gaps, and one before the store began.
        #expect(try store.completeness(from: t0 + 30_000, to: t0 + 50_000)?.ratio == 1)
        #expect(try store.completeness(from: t0 - 50_000, to: t0 - 10_000)?.expected == 0)
        // A young store whose first tick came 1.6 s after its run began (the collectors' warm-up): no gap.
        let youngDir = try temporaryDirectory("completeness-young")
        defer { try? FileManager.default.removeItem(atPath: youngDir) }
        let young = try TwinStore.open(dataDir: youngDir)
        let w = TwinWriter(store: young, policy: .testing)
        try w.begin(now: t0, interval: 1000)
        for i in 0..<5 { _ = try w.commit(Observation(timestamp: t0 + 1_600 + Int64(i) * 1000)) }
        let c = try #require(try young.completeness(from: t0 - 86_400_000, to: t0 + 5_600))
        #expect(c.gaps.isEmpty && c.ratio == 1, "\(c)")

        // A run that began between two slots (as every run does), its ticks on the grid, one skipped: ten
        // slots due, nine stored — not 100 % beside a one-tick gap.
        let offDir = try temporaryDirectory("completeness-off-grid")
        defer { try? FileManager.default.removeItem(atPath: offDir) }
        let off = try TwinStore.open(dataDir: offDir)
        let ow = TwinWriter(store: off, policy: .testing)
        try ow.begin(now: t0 + 250, interval: 1000)
        for i in 1...10 where i != 3 { _ = try ow.commit(Observation(timestamp: t0 + Int64(i) * 1000)) }
        let oc = try #require(try off.completeness(from: t0 - 86_400_000, to: t0 + 10_000))
        #expect(oc.expected == 10 && oc.stored == 9 && oc.gaps.map(\.missing) == [1], "\(oc)")
        #expect(abs(oc.ratio - 0.9) < 1e-9)
    }

    /// The budget fills at its share of a core, ticks and refreshes spend it, and debt is kept to ten seconds' worth.
    @Test func theCPUBudgetLetsRefreshesSpendOnlyWhatTicksLeave() {
        var b = CPUBudget(share: 0.002, now: 0) // 2 ms a second, 20 ms at most
        let fresh = b.allows(at: 0)
        b.charge(500_000, at: 0) // a first tick that reads everything: half a second
        let later = [0, 10_000, 10_500].map { b.allows(at: $0) }
        #expect(fresh)
        #expect(later == [false, false, true], "in debt by 20 ms at most, repaid in 10 s")
        // Ticks of 1.5 ms a second leave 0.5 ms a second for refreshes.
        b = CPUBudget(share: 0.002, now: 0)
        var refreshes = 0
        for second in 1...100 {
            b.charge(1500, at: Int64(second) * 1000)
            for k in 0..<50 where b.allows(at: Int64(second) * 1000 + Int64(k) * 20) {
                b.charge(100, at: Int64(second) * 1000 + Int64(k) * 20)
                refreshes += 1
            }
        }
        // 20 ms at the start plus 0.5 ms a second for 100 s: 70 ms, 700 refreshes of 100 µs, give or take one.
        #expect((690...710).contains(refreshes), "\(refreshes) refreshes")
        #expect(b.health(changeDriven: true).message?.contains("limited") == true)
        // Ticks that use the whole budget leave nothing.
        b = CPUBudget(share: 0.002, now: 0)
        b.charge(30_000, at: 0)
        for second in 1...10 { b.charge(2500, at: Int64(second) * 1000) }
        let allowed = b.allows(at: 10_000)
        #expect(!allowed)
    }

    /// Held-back changes, or the whole process over the budget, relax the other collectors ×5 then ×15,
    /// 30 s apart; a process still over the budget after five minutes at ×15 keeps them there and says so;
    /// five quiet minutes step back, but not to a factor found over the budget within the hour.
    @Test func relaxationStaysAtItsMostWhenTheEssentialCollectorsExceedTheBudget() {
        var r = Relaxation()
        let budget = 2000.0
        func step(_ t: Int64, refused: Bool = false, cost: Double?) -> Relaxation.Change? {
            r.step(at: 1_000_000 + t, refusedRecently: refused, refusedLately: refused, processCost: cost, budget: budget)
        }
        #expect(step(10_000, cost: nil) == nil && r.factor == 1)
        #expect(step(15_000, cost: 1500) == nil && r.factor == 1)
        #expect(step(20_000, refused: true, cost: 1500) == .factor && r.factor == 5, "a held-back change")
        #expect(step(40_000, cost: 2500) == nil && r.factor == 5, "30 s between steps")
        #expect(step(50_000, cost: 2300) == .factor && r.factor == 15, "the process over the budget")
        #expect(step(300_000, cost: 2100) == nil && !r.essentialOverBudget, "five minutes at ×15 first")
        #expect(step(360_000, cost: 2100) == .essentialOverBudget && r.essentialOverBudget && r.factor == 15)
        // Still over: stays at ×15 (going back would cost more), said once.
        #expect(step(700_000, cost: 2050) == nil && r.factor == 15 && r.essentialOverBudget)
        #expect(step(710_000, cost: 1900) == nil && r.essentialOverBudget, "within the tenth of hysteresis")
        #expect(step(720_000, cost: 1700) == nil && !r.essentialOverBudget)
        // Under the budget now, but ×5 cost more than it 670 s ago: no step back within the hour.
        #expect(step(730_000, cost: 1700) == nil && r.factor == 15)
        #expect(step(3_700_000, cost: 1700) == .factor && r.factor == 5, "an hour later, tried again")
        #expect(step(4_000_000, cost: 1700) == .factor && r.factor == 1, "×1 was left for a held-back change, not for cost")
        #expect(step(4_040_000, cost: 2100) == .factor && r.factor == 5)
    }

    /// The process's cost is its CPU over the last five minutes: nothing before 30 s are covered, a burst
    /// counts while it is within the window, and a clock that goes back starts the window again.
    @Test func processCostIsTheLastFiveMinutes() {
        var c = ProcessCost()
        var cpu: Int64 = 0, last: Double?
        for s in 0...600 {
            cpu += s == 100 ? 600_000 : 1_500 // 1.5 ms a second, and a 0.6 s burst at 100 s
            last = c.note(cpuMicros: cpu, at: 1_000_000 + Int64(s) * 1000)
            if s == 20 { #expect(last == nil) }
            if s == 40 { #expect(last.map { abs($0 - 1500) < 1 } == true, "\(String(describing: last))") }
            if s == 300 { #expect(last.map { $0 > 3000 } == true, "the burst is within the window") }
        }
        #expect(last.map { abs($0 - 1500) < 1 } == true, "the burst has left the window: \(String(describing: last))")
        #expect(c.note(cpuMicros: cpu, at: 1_000_000) == nil)
    }

    /// Historical reconstruction (`bench history`, short form): two and a half days of a generated busy host at
    /// 30 s with raw samples kept one day, so the 1-minute tier answers for the older part. Every `state
    /// --at`, stored sample, rollup point and PromQL answer must equal the generator's truth; checked
    /// against another seed's history, the same store must disagree (the check can fail).
    @Test func historyIsReconstructedExactlyTierByTier() throws {
        let dir = try temporaryDirectory("history")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let end: Int64 = 1_790_000_000_000 / 3_600_000 * 3_600_000, start = end - 60 * 3_600_000
        let history = SyntheticHistory(profile: .busy, start: start, end: end, interval: 30_000, seed: 3)
        var policy = StoragePolicy()
        policy.rawRetention = StoragePolicy.day
        let store = try TwinStore.open(dataDir: dir)
        try HistoryCheck.write(history, into: store, policy: policy)
        let report = try HistoryCheck.check(history, store: store, instants: 40)
        for (part, table) in [("state", report.state), ("samples", report.samples), ("promql", report.promql)] {
            for (name, a) in table { #expect(a.exact == a.compared, "\(part) \(name): \(a.examples)") }
        }
        #expect(Set(report.state.keys).isSuperset(of: ["processes", "listening_ports", "connections", "packages"]))
        #expect((report.samples["1m"]?.compared ?? 0) > 0 && (report.samples["1h"]?.compared ?? 0) > 0)
        #expect((report.promql["1m"]?.compared ?? 0) > 0 && (report.promql["raw"]?.compared ?? 0) > 0)

        let other = SyntheticHistory(profile: .busy, start: start, end: end, interval: 30_000, seed: 4)
        let wrong = try HistoryCheck.check(other, store: store, instants: 10)
        #expect((wrong.state["processes"]?.share ?? 1) < 0.9)
        #expect((wrong.samples["raw"]?.share ?? 1) < 0.5)
    }

    /// Accuracy against interval: a counter at 0.1 s with a half-second burst; the reference keeps all of
    /// it, 1 s keeps the burst at 55 % of its peak (above the half-peak threshold), 5 s loses it; after a
    /// lasting change of rate, adaptive sampling takes more samples than its base interval would.
    @Test func intervalStudyMeasuresWhatEachIntervalKeeps() {
        var counter = [0.0]
        for i in 1..<600 { counter.append(counter[i - 1] + ((301...305).contains(i) ? 10 : 1)) }
        let study = IntervalStudy.study(counter, stepMillis: 100, intervals: [100, 1000, 5000], adaptive: [])
        #expect(study.map(\.sampling) == ["0.1s", "1s", "5s"])
        #expect(study[0].peakKept == 1 && study[0].relativeError == 0 && study[0].burstsSeen == 1 && study[0].bursts == 1)
        #expect(abs(study[1].peakKept - 0.55) < 1e-9 && study[1].burstsSeen == 1)
        #expect(study[2].burstsSeen == 0 && study[2].peakKept < 0.2 && study[2].relativeError > study[1].relativeError)
        #expect(abs(study[1].samplesPerMinute - 60) < 0.5)

        var step = [0.0]
        for i in 1..<1200 { step.append(step[i - 1] + (i > 600 ? 5 : 1)) }
        let both = IntervalStudy.study(step, stepMillis: 100, intervals: [5000], adaptive: [(base: 5000, fast: 1000)])
        #expect(both[1].sampling == "adaptive 5s/1s")
        #expect(both[1].samplesPerMinute > both[0].samplesPerMinute)
        #expect(both[1].relativeError <= both[0].relativeError)
    }
}

/// `run` drops the pages of code and read-only data start-up left resident, but never the relocated
/// read-only data (private copies): dropping those would lose the dynamic linker's relocations.
@Suite struct MemoryFootprintTests {
    @Test func droppingFilePagesKeepsTheRelocatedReadOnlyData() throws {
        // Read every page of the clean read-only data first: under memory pressure (builds beside the
        // tests) the kernel may have reclaimed what start-up left resident.
        var touched: UInt8 = 0
        for m in MemoryFootprint.fileMappings() where m.isReadOnlyData && m.anonymousKB == 0 {
            for page in stride(from: m.start, to: m.end, by: 4096) { touched &+= UnsafePointer<UInt8>(bitPattern: page)?.pointee ?? 0 }
        }
        withExtendedLifetime(touched) {}
        let before = MemoryFootprint.fileMappings()
        let relocated = before.filter { $0.isReadOnlyData && $0.anonymousKB > 0 }
        let clean = before.filter { $0.isReadOnlyData && $0.anonymousKB == 0 }
        let cleanResident = clean.reduce(0) { $0 + $1.residentKB }
        try #require(!relocated.isEmpty, "a dynamically linked test binary has relocated read-only data")
        try #require(cleanResident > 256, "start-up left read-only file pages resident: \(cleanResident) kB")

        // The mappings dropped (read from /proc/self/maps once smaps has been read): code and the clean
        // read-only data, never the relocated.
        let dropped = Set(MemoryFootprint.mappingsToDrop().map(\.start))
        #expect(relocated.allSatisfy { !dropped.contains($0.start) })
        #expect(clean.allSatisfy { dropped.contains($0.start) })
        #expect(before.filter(\.isCode).allSatisfy { dropped.contains($0.start) })

        MemoryFootprint.dropFilePages()

        let after = Dictionary(MemoryFootprint.fileMappings().map { ($0.start, $0) }, uniquingKeysWith: { a, _ in a })
        for mapping in relocated {
            #expect(after[mapping.start]?.anonymousKB == mapping.anonymousKB, "relocations kept at \(String(mapping.start, radix: 16))")
        }
        let cleanAfter = clean.reduce(0) { $0 + (after[$1.start]?.residentKB ?? 0) }
        #expect(cleanAfter * 2 < cleanResident, "read-only file pages dropped: \(cleanResident) kB before, \(cleanAfter) kB after")
        // Code still runs and constants still read after the drop.
        #expect(String(describing: [1, 2, 3].map { $0 * 2 }) == "[2, 4, 6]")
    }

    /// Linux 6.7 lets any mapping be registered with userfaultfd for write-protection (`UFFD_FEATURE_WP_ASYNC`).
    static let kernelAllowsAnyMappingWriteProtected: Bool = {
        let release = (try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)) ?? ""
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        return parts.count == 2 && (parts[0], parts[1]) >= (6, 7)
    }()

    /// A mapping registered by `hosttwin_map_code_page_by_page` gets one page a fault; one made after it and
    /// not registered gets the kernel's fault-around. Both map the same file, written just before (so
    /// cached, as an installed binary is), and touch the same pages. It is written in one write, which
    /// caches it in folios of 2 MiB here: a fault maps such a folio whole unless the mapping is advised
    /// against huge pages, as the registered mappings are.
    @Test(.enabled(if: kernelAllowsAnyMappingWriteProtected, "needs Linux 6.7 or later"))
    func registeredFileMappingsFaultInAPageAtATime() throws {
        #expect(hosttwin_fault_around_off() > 0, "the constructor registered this test binary's mappings")
        let dir = try temporaryDirectory("fault-around")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/code"
        let size = 32 << 20
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        try #require(fd >= 0)
        defer { close(fd) }
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try #require(write(fd, bytes, size) == size)

        func residentKB(touching mapping: UnsafeMutableRawPointer) -> Int {
            var sum = 0
            for page in stride(from: 0, to: size, by: 64 * 4096) { sum &+= Int(mapping.load(fromByteOffset: page, as: UInt8.self)) }
            precondition(sum >= 0, "the pages were read")
            return MemoryFootprint.fileMappings().first { $0.start == UInt(bitPattern: mapping) }?.residentKB ?? -1
        }
        let touches = (size + 64 * 4096 - 1) / (64 * 4096)
        func map() throws -> UnsafeMutableRawPointer {
            let m = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            try #require(m != nil && m != MAP_FAILED, "mapped")
            return m!
        }
        let registered = try map()
        defer { munmap(registered, size) }
        #expect(hosttwin_map_code_page_by_page() > hosttwin_fault_around_off(), "the new mapping registered too")
        let unregistered = try map()
        defer { munmap(unregistered, size) }

        let pageByPage = residentKB(touching: registered)
        let faultAround = residentKB(touching: unregistered)
        #expect(pageByPage >= touches * 4 && pageByPage <= touches * 4 + 64, "\(touches) pages touched, \(pageByPage) kB resident")
        #expect(faultAround >= pageByPage * 4, "the kernel's fault-around: \(faultAround) kB resident for \(touches) touches")
    }
}
