import Foundation
import Testing
import TwinCore
@testable import TwinQuery
import TwinStorage

/// A store holding `text` (Prometheus text with ms timestamps), imported through the real bulk path.
func storeWith(_ text: String) throws -> (TwinStore, String) {
    let dir = try temporaryDirectory("hosttwin-query")
    let file = dir + "/data.prom"
    try text.write(toFile: file, atomically: true, encoding: .utf8)
    let store = try TwinStore.open(dataDir: dir + "/store")
    let writer = TwinWriter(store: store)
    try writer.open()
    let importer = BulkImporter(writer: writer)
    try importer.importFile(file)
    try writer.finish(now: 0)
    return (store, dir)
}

/// PromQL: parsing, errors with positions, and evaluation on a real store.
@Suite struct QueryTests {
    /// Samples every 10 s from t=0 to t=600 s: a counter rising 10 per sample with a reset at 300 s,
    /// a gauge equal to t/10, and three cpu series for matching and aggregation.
    /// Time zero of the data (ms): realistic, since the importer tells ms from s timestamps by size.
    static let t0: Int64 = 1_700_000_000_000

    static let data: String = {
        var lines: [String] = []
        var counter = 0.0
        for i in 0...60 {
            let t = t0 + Int64(i) * 10_000
            counter = i == 30 ? 5 : counter + 10
            lines.append("requests_total{job=\"api\"} \(counter) \(t)")
            lines.append("temp{room=\"a\"} \(Double(i)) \(t)")
            for (cpu, mode, v) in [("0", "user", 1.0), ("0", "idle", 3.0), ("1", "user", 2.0)] {
                lines.append("cpu_seconds_total{cpu=\"\(cpu)\",mode=\"\(mode)\"} \(v * Double(i)) \(t)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }()

    func engine() throws -> (PromQLEngine, String) {
        let (store, dir) = try storeWith(Self.data)
        return (PromQLEngine(source: StoreSampleSource(store: store)), dir)
    }

    /// Evaluates `q` at `at` ms after ``t0``.
    func instant(_ e: PromQLEngine, _ q: String, at: Int64) throws -> [String: Double] {
        switch try e.instant(try PromQLParser.parse(q), at: Self.t0 + at) {
        case .vector(_, let samples): return Dictionary(uniqueKeysWithValues: samples.map { ($0.labels.text, $0.value) })
        case .scalar(_, let v): return ["scalar": v]
        default: return [:]
        }
    }

    /// One budget for everything a query holds (issue 12): loaded samples, subquery points and a range
    /// query's output points each stop the query once the total passes it.
    @Test func everyHeldSampleCountsAgainstOneBudget() throws {
        var (e, dir) = try engine()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        e.maxSamples = 100
        func refused(_ body: () throws -> Any) -> Bool {
            do { _ = try body(); return false } catch let PromQLError.execution(m) { return m.contains("too many samples") } catch { return false }
        }
        let t = Self.t0 + 600_000
        // 61 stored samples of one series load within the budget; three series of them do not.
        #expect(!refused { try e.instant(try PromQLParser.parse("count_over_time(temp[10m])"), at: t) })
        #expect(refused { try e.instant(try PromQLParser.parse("count_over_time(cpu_seconds_total[10m])"), at: t) })
        // A subquery of 101 steps: refused before it runs; of 60 steps of 2 series: refused as it grows.
        #expect(refused { try e.instant(try PromQLParser.parse("count_over_time(vector(1)[101s:1s])"), at: t) })
        #expect(!refused { try e.instant(try PromQLParser.parse("count_over_time(vector(1)[99s:1s])"), at: t) })
        #expect(refused { try e.instant(try PromQLParser.parse("count_over_time((temp or temp * 2 + 1)[60s:1s])"), at: t) })
        // A range query of 101 output points, each step cheap.
        #expect(refused { try e.range(try PromQLParser.parse("vector(1)"), start: t, end: t + 100_000, step: 1000) })
        #expect(!refused { try e.range(try PromQLParser.parse("vector(1)"), start: t, end: t + 98_000, step: 1000) })
    }

    /// Series matching reads the `job` and `instance` a scrape adds without building each series' labels
    /// (a busy host's catalog holds thousands of per-process series): every selector finds what it finds
    /// in the labels built whole by ``ScrapeLabels/add(to:)``, which are what it returns.
    @Test func matchingReadsScrapeLabelsAsTheBuiltLabelsHoldThem() throws {
        let t = Self.t0
        let (store, dir) = try storeWith("""
            up 1 \(t)
            up{job="api"} 1 \(t)
            up{job="",ifalias=""} 1 \(t)
            up{host="web1"} 1 \(t)
            up{host="web2",instance="web2:9100"} 1 \(t)
            other{instance="",room="a"} 1 \(t)

            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = StoreSampleSource(store: store, scrapeLabels: ScrapeLabels(job: "node", instance: "me"))
        let all = try source.matching([try Matcher(name: "__name__", op: .regex, value: ".+")])
        #expect(all.count >= 5)
        #expect(all.contains { $0.labels.text == #"{__name__="up",host="web1",instance="web1",job="node"}"# }, "\(all.map(\.labels.text))")
        #expect(all.contains { $0.labels.text == #"{__name__="up",host="web2",instance="web2:9100",job="node"}"# })
        #expect(all.contains { $0.labels.text == #"{__name__="other",instance="me",job="node",room="a"}"# })
        let selectors: [(String, MatchOp, String)] = [
            ("job", .equal, "node"), ("job", .equal, "api"), ("job", .equal, ""), ("instance", .equal, "me"), ("instance", .equal, "web1"),
            ("instance", .regex, "web.*"), ("instance", .notEqual, "me"), ("ifalias", .equal, ""), ("room", .equal, "a"),
            ("__name__", .equal, "up"), ("__name__", .notRegex, "u.*"), ("host", .notRegex, "web.*"), ("nothing", .equal, ""),
        ]
        for (name, op, value) in selectors {
            let m = try Matcher(name: name, op: op, value: value)
            let found = try source.matching([m]).map(\.labels.text).sorted()
            let built = all.filter { m.matches($0.labels.value(name)) }.map(\.labels.text).sorted()
            #expect(found == built, "\(name)\(op.rawValue)\"\(value)\": \(found) against \(built)")
        }
    }

    @Test func evaluatesOnAStore() throws {
        let (e, dir) = try engine()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A counter rising 10 per 10 s: 1/s; the 60 s window holds 7 samples 60 s apart at both ends.
        #expect(try instant(e, "rate(requests_total[1m])", at: 200_000) == ["{job=\"api\"}": 1])
        // increase across the reset at 300 s: the window [280 s, 340 s] holds 290, 300, 5, 15, 25, 35, 45;
        // 45 - 290 plus 300 for the reset = 55, and the samples span the whole window (no extrapolation).
        let inc = try #require(try instant(e, "increase(requests_total[1m])", at: 340_000)["{job=\"api\"}"])
        #expect(abs(inc - 55) < 1e-9)
        #expect(try instant(e, "resets(requests_total[10m])", at: 600_000).values.first == 1)
        // The 5-minute lookback: the last sample is at 600 s; at 900 s it is still visible, at 900.001 s not.
        #expect(try instant(e, "temp", at: 900_000)["{__name__=\"temp\",room=\"a\"}"] == 60)
        #expect(try instant(e, "temp", at: 900_001).isEmpty)
        #expect(try instant(e, "temp offset 1m", at: 600_000).values.first == 54)
        #expect(try instant(e, "temp @ \(Self.t0 / 1000 + 100)", at: 600_000).values.first == 10)
        #expect(try instant(e, "sum by (mode) (cpu_seconds_total)", at: 100_000) == ["{mode=\"idle\"}": 30, "{mode=\"user\"}": 30])
        #expect(try instant(e, "cpu_seconds_total{mode=\"user\"} / on (cpu) cpu_seconds_total{mode=\"idle\"}", at: 100_000) == ["{cpu=\"0\"}": 1.0 / 3])
        #expect(try instant(e, "topk(1, cpu_seconds_total)", at: 100_000).keys.first == "{__name__=\"cpu_seconds_total\",cpu=\"0\",mode=\"idle\"}")
        // Ties (every cpu series is 0 at t0) go to the series first in label order, as Prometheus' heap
        // keeps the first series it saw, and its selectors return series in label order.
        #expect(try instant(e, "topk(2, cpu_seconds_total)", at: 0).keys.sorted() == ["{__name__=\"cpu_seconds_total\",cpu=\"0\",mode=\"idle\"}", "{__name__=\"cpu_seconds_total\",cpu=\"0\",mode=\"user\"}"])
        #expect(try instant(e, "bottomk(1, cpu_seconds_total)", at: 0).keys.first == "{__name__=\"cpu_seconds_total\",cpu=\"0\",mode=\"idle\"}")
        #expect(try instant(e, "bottomk(1, cpu_seconds_total{mode=\"user\"})", at: 0).keys.first == "{__name__=\"cpu_seconds_total\",cpu=\"0\",mode=\"user\"}")
        // Two equal filesystems and a smaller one (seen when `ip netns add` mounted /run/netns on the root
        // device): Prometheus' heap replaces its root, the first of the equal ones, with the smaller — so it
        // keeps the second equal one, not the first in label order.
        let (fs, fsDir) = try storeWith(["/", "/run/netns", "/tiny"].map { "avail{mountpoint=\"\($0)\"} \($0 == "/tiny" ? 1 : 5) \(Self.t0)" }.joined(separator: "\n") + "\n")
        defer { try? FileManager.default.removeItem(atPath: fsDir) }
        let fsEngine = PromQLEngine(source: StoreSampleSource(store: fs))
        #expect(try instant(fsEngine, "bottomk(2, avail)", at: 0).keys.sorted() == ["{__name__=\"avail\",mountpoint=\"/run/netns\"}", "{__name__=\"avail\",mountpoint=\"/tiny\"}"])
        #expect(try instant(fsEngine, "topk(1, avail)", at: 0).keys.sorted() == ["{__name__=\"avail\",mountpoint=\"/\"}"])
        #expect(try instant(e, "count_values(\"v\", cpu_seconds_total)", at: 100_000) == ["{v=\"10\"}": 1, "{v=\"20\"}": 1, "{v=\"30\"}": 1])
        #expect(try instant(e, "2 ^ 3 ^ 2", at: 0) == ["scalar": 512])
        #expect(try instant(e, "-2 ^ 2", at: 0) == ["scalar": -4])
        #expect(try instant(e, "1 + 2 * 3 - 4 / 2", at: 0) == ["scalar": 5])
        // Subquery steps sit on multiples of the step in Unix time: t0 is 20 s past a minute, so the newest
        // step before t0 + 300 s is t0 + 280 s, where temp is 28.
        #expect(try instant(e, "max_over_time(temp[5m:1m])", at: 300_000).values.first == 28)
        #expect(try instant(e, "label_replace(temp, \"r\", \"room-$1\", \"room\", \"(.*)\")", at: 0).keys.first == "{__name__=\"temp\",r=\"room-a\",room=\"a\"}")
        // Many-to-many matching is refused with Prometheus' message.
        #expect(throws: PromQLError.self) { try instant(e, "cpu_seconds_total / on (mode) cpu_seconds_total", at: 100_000) }

        let range = try e.range(try PromQLParser.parse("temp * 2"), start: Self.t0, end: Self.t0 + 60_000, step: 15_000)
        guard case .matrix(let series) = range else { Issue.record("expected a matrix"); return }
        #expect(series.count == 1 && series[0].points.map(\.1) == [0, 2, 6, 8, 12])
    }

    /// Calendar functions in UTC around a leap day and before 1970, trigonometry, `holt_winters` by hand,
    /// and its refusal of smoothing factors outside (0, 1) — Prometheus 2.42's rules (the conformance
    /// suite checks them against Prometheus itself).
    @Test func calendarTrigonometryAndSmoothing() throws {
        let (e, dir) = try engine()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 2024-02-29T23:59:59Z, a Thursday; 1969-12-31T23:00:00Z, a Wednesday.
        for (f, leap, before) in [("year", 2024.0, 1969.0), ("month", 2, 12), ("day_of_month", 29, 31), ("day_of_week", 4, 3),
                                  ("day_of_year", 60, 365), ("days_in_month", 29, 31), ("hour", 23, 23), ("minute", 59, 0)] {
            #expect(try instant(e, "\(f)(vector(1709251199))", at: 0)[""] == leap, "\(f) of the leap day")
            #expect(try instant(e, "\(f)(vector(-3600))", at: 0)[""] == before, "\(f) before 1970")
        }
        #expect(try instant(e, "year(vector(1/0))", at: 0)[""]?.isNaN == true, "an infinite time is no date")
        #expect(try instant(e, "pi()", at: 0)["scalar"] == Double.pi)
        #expect(try instant(e, "deg(vector(pi()))", at: 0)[""] == 180)
        #expect(abs(try instant(e, "sin(vector(pi() / 6))", at: 0)[""]! - 0.5) < 1e-15)
        #expect(try instant(e, "acos(vector(2))", at: 0)[""]?.isNaN == true)
        #expect(try instant(e, "atanh(vector(1))", at: 0)[""] == .infinity)
        // temp rises by 1 each 10 s: level 0,1,2...; smoothing with trend follows the line exactly.
        #expect(try instant(e, "holt_winters(temp[1m], 0.5, 0.5)", at: 600_000)["{room=\"a\"}"] == 60)
        #expect(PromFunctions.holtWinters([1, 3, 2, 5], smoothing: 0.5, trend: 0.5)! == 4.875)
        #expect(PromFunctions.holtWinters([1], smoothing: 0.5, trend: 0.5) == nil)
        #expect(throws: PromQLError.self) { try instant(e, "holt_winters(temp[1m], 1, 0.5)", at: 600_000) }
        #expect(try instant(e, "holt_winters(absent_metric[1m], 2, 2)", at: 600_000).isEmpty, "no series, no error")
    }

    @Test func refusesAbsurdRanges() throws {
        let (e, dir) = try engine()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let q = try PromQLParser.parse("temp")
        #expect(throws: PromQLError.badData("end timestamp must not be before start time")) { try e.range(q, start: 10, end: 0, step: 1) }
        #expect(throws: PromQLError.self) { try e.range(q, start: 0, end: 10, step: 0) }
        #expect(throws: PromQLError.self) { try e.range(q, start: 0, end: 11_001_000, step: 1000) }
        #expect(throws: PromQLError.self) { try e.range(try PromQLParser.parse("temp[5m]"), start: 0, end: 10, step: 1) }
        // A query that would load more samples than allowed is refused before it loads them.
        var small = e
        small.maxSamples = 100
        #expect(throws: PromQLError.self) { try small.range(try PromQLParser.parse("cpu_seconds_total"), start: Self.t0, end: Self.t0 + 600_000, step: 60_000) }
        #expect(throws: Never.self) { try small.range(try PromQLParser.parse("temp"), start: Self.t0, end: Self.t0 + 600_000, step: 60_000) }
    }

    @Test func parseErrorsPointAtTheProblem() {
        let cases: [(String, Int)] = [
            ("sum(rate(foo[5m]) by", 18), ("foo{bar=\"baz\"", 13), ("foo[5m", 6), ("rate(foo)", 0),
            ("unknown_fn(foo)", 0), ("{}", 0), ("foo offset 5m offset 1m", 14), ("1 +", 3), ("foo{a=~\"(\"}", 4),
            ("'unterminated", 0), ("foo[5x]", 4), ("1 > 2", 2), ("sum by (a (foo)", 10), ("\u{1}", 0),
        ]
        for (q, pos) in cases {
            do {
                _ = try PromQLParser.parse(q)
                Issue.record("\(q) parsed")
            } catch let PromQLError.parse(p, message) {
                #expect(p == pos, "\(q): \(message)")
                #expect(message.contains("parse error"), "\(q): \(message)")
            } catch { Issue.record("\(q): \(error)") }
        }
        // Depth is bounded: evaluation recurses per level.
        let deep = String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000)
        #expect(throws: PromQLError.self) { try PromQLParser.parse(deep) }
        let chain = (0..<2000).map { _ in "1" }.joined(separator: " + ")
        #expect(throws: PromQLError.self) { try PromQLParser.parse(chain) }
        let minus = String(repeating: "-", count: 5000) + "1"
        #expect(throws: PromQLError.self) { try PromQLParser.parse(minus) }
    }

    /// Random damage to valid queries never crashes the parser or the engine.
    @Test func survivesMangledQueries() throws {
        var (e, dir) = try engine()
        // A mangled subquery can ask for billions of steps; the deadline stops it (and the test stays quick).
        e.timeout = 200
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let seeds = ["sum by (mode) (rate(cpu_seconds_total{mode!=\"idle\"}[1m] offset 30s))",
                     "histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))",
                     "max_over_time(temp[5m:1m] @ 1700000100) / on (room) group_left temp",
                     "label_join(temp, \"x\", \"-\", \"room\", \"room\") > bool 3"]
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("(){}[]:,@=~!\"'`+-*/^%<>0123456789.eEsmhdwy abcxyz_\\\u{0}é")
        var parsed = 0
        for _ in 0..<3000 {
            var chars = Array(seeds.randomElement(using: &rng)!)
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<chars.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: chars.remove(at: i)
                case 1: chars.insert(alphabet.randomElement(using: &rng)!, at: i)
                default: chars[i] = alphabet.randomElement(using: &rng)!
                }
                if chars.isEmpty { chars = ["1"] }
            }
            guard let expr = try? PromQLParser.parse(String(chars)) else { continue }
            parsed += 1
            _ = try? e.instant(expr, at: Self.t0 + 300_000)
            _ = try? e.range(expr, start: Self.t0, end: Self.t0 + 600_000, step: 60_000)
        }
        #expect(parsed > 0)
    }

    /// Offsets, ranges and `@` times at the ends of the time line give answers (mostly empty), not traps.
    @Test func extremeTimesDoNotTrap() throws {
        let (e, dir) = try engine()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for q in ["temp offset 290000y", "temp offset -290000y", "temp @ 9000000000000000", "temp @ -9000000000000000",
                  "rate(temp[290000y])", "rate(temp[290000y] offset -290000y)", "max_over_time(temp[290000y:100000y])",
                  "max_over_time(temp[1m:1m] offset 290000y)", "temp[290000y] @ -9000000000000000", "timestamp(temp offset -290000y)"] {
            let expr = try PromQLParser.parse(q)
            _ = try? e.instant(expr, at: Self.t0)
            _ = try? e.instant(expr, at: .max - 1)
            if expr.type != .matrix {
                _ = try? e.range(expr, start: Self.t0, end: Self.t0 + 600_000, step: 60_000)
                _ = try? e.range(expr, start: 9_200_000_000_000_000, end: .max, step: 1_000_000_000_000_000)
            }
        }
    }

    @Test func formatsNumbersAsPrometheus() {
        #expect(PromNumber.format(1) == "1")
        #expect(PromNumber.format(0.1) == "0.1")
        #expect(PromNumber.format(1e-5) == "0.00001")
        #expect(PromNumber.format(1.5e21) == "1500000000000000000000")
        #expect(PromNumber.format(-2.5) == "-2.5")
        #expect(PromNumber.format(.infinity) == "+Inf" && PromNumber.format(-.infinity) == "-Inf" && PromNumber.format(.nan) == "NaN")
        #expect(PromNumber.format(77006557184) == "77006557184")
    }
}

/// The matrix form of range queries (every node over all steps at once) against the step-by-step form,
/// on every query of the conformance suite over series that come and go, have gaps longer than the
/// lookback, reset, and collide on labels once their names are dropped.
@Suite struct MatrixFormTests {
    static let t0: Int64 = 1_700_000_000_000

    static let data: String = {
        var lines: [String] = []
        var rng = SeededRandom(seed: 7)
        for i in 0...240 {
            let t = t0 + Int64(i) * 15_000
            let gap = i > 100 && i < 130 // longer than the 5-minute lookback for some series
            for cpu in 0..<3 where !(cpu == 2 && i < 60) {
                for mode in ["idle", "user", "system", "iowait"] {
                    let v = Double(i) * (mode == "idle" ? 0.8 : 0.05) + Double(cpu) + (mode == "user" && i > 150 ? -3 : 0)
                    lines.append("node_cpu_seconds_total{cpu=\"\(cpu)\",mode=\"\(mode)\"} \(max(v, 0)) \(t)")
                }
            }
            lines.append("node_memory_MemTotal_bytes 8000000000 \(t)")
            if !gap { lines.append("node_memory_MemAvailable_bytes \(3e9 + Double.random(in: 0..<1, using: &rng) * 1e9) \(t)") }
            lines.append("node_memory_MemFree_bytes \(1e9 + Double(i) * 1e6) \(t)")
            lines.append("node_memory_SwapTotal_bytes 0 \(t)")
            lines.append("node_memory_SwapFree_bytes 0 \(t)")
            for (mp, fs) in [("/", "ext4"), ("/run", "tmpfs"), ("/data", "xfs")] where !(mp == "/data" && i > 180) {
                lines.append("node_filesystem_size_bytes{mountpoint=\"\(mp)\",fstype=\"\(fs)\",device=\"d\(mp.count)\"} 1e11 \(t)")
                lines.append("node_filesystem_avail_bytes{mountpoint=\"\(mp)\",fstype=\"\(fs)\",device=\"d\(mp.count)\"} \(5e10 - Double(i) * 1e7) \(t)")
                lines.append("node_filesystem_free_bytes{mountpoint=\"\(mp)\",fstype=\"\(fs)\",device=\"d\(mp.count)\"} \(6e10 - Double(i) * 1e7) \(t)")
            }
            for dev in ["lo", "eth0", "veth1"] where !(dev == "veth1" && (i < 40 || gap)) {
                lines.append("node_network_receive_bytes_total{device=\"\(dev)\"} \(Double(i * i) * 100) \(t)")
                lines.append("node_network_transmit_bytes_total{device=\"\(dev)\"} \(Double(i) * 5000) \(t)")
                lines.append("node_network_receive_packets_total{device=\"\(dev)\"} \(Double(i) * 7) \(t)")
            }
            for dev in ["sda", "sdb"] {
                lines.append("node_disk_read_bytes_total{device=\"\(dev)\"} \(Double(i) * 4096 + (i > 200 ? -1e5 : 0)) \(t)")
                lines.append("node_disk_reads_completed_total{device=\"\(dev)\"} \(Double(i / 3)) \(t)")
                lines.append("node_disk_io_time_seconds_total{device=\"\(dev)\"} \(Double(i) * 0.01) \(t)")
            }
            lines.append("node_load1 \(Double.random(in: 0..<1, using: &rng) * 4) \(t)")
            lines.append("node_load5 \(1 + sin(Double(i) / 20)) \(t)")
            if !gap { lines.append("node_time_seconds \(Double(t) / 1000) \(t)") }
            lines.append("node_boot_time_seconds 1699990000 \(t)")
        }
        return lines.joined(separator: "\n") + "\n"
    }()

    static let queries: [String] = {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("conformance/queries.txt").path
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map { line in
            var q = line.trimmingCharacters(in: .whitespaces)
            if q.hasPrefix("[ci]") { q = String(q.dropFirst(4)).trimmingCharacters(in: .whitespaces) }
            return q
        }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }()

    /// Both forms over 30, 60 and 125 steps at offsets that do and do not align with the samples.
    @Test func bothFormsAgreeOnEveryConformanceQuery() throws {
        #expect(Self.queries.count > 200)
        let (store, dir) = try storeWith(Self.data)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var matrix = PromQLEngine(source: StoreSampleSource(store: store))
        var steps = matrix
        matrix.matrixForm = true
        steps.matrixForm = false
        var compared = 0, nonEmpty = 0
        for q in Self.queries {
            // Some lines are refused on purpose (as Prometheus refuses them).
            guard let expr = try? PromQLParser.parse(q), expr.type == .vector || expr.type == .scalar else { continue }
            for (from, to, step) in [(Self.t0 + 60_000, Self.t0 + 3_600_000, Int64(30_000)), (Self.t0, Self.t0 + 3_600_000, 60_000), (Self.t0 + 7_000, Self.t0 + 3_500_000, 28_000)] {
                let a = Result { try matrix.range(expr, start: from, end: to, step: step) }
                let b = Result { try steps.range(expr, start: from, end: to, step: step) }
                compared += 1
                switch (a, b) {
                case (.success(let x), .success(let y)):
                    let (fx, fy) = (Self.flat(x), Self.flat(y))
                    #expect(fx.count == fy.count, "\(q): \(fx.count) vs \(fy.count) points")
                    if !fx.isEmpty { nonEmpty += 1 }
                    for (key, v) in fy {
                        guard let w = fx[key] else { Issue.record("\(q): \(key) missing in the matrix form"); break }
                        let same = v.isNaN ? w.isNaN : (v == w || abs(v - w) <= 1e-12 * max(abs(v), abs(w)))
                        if !same { Issue.record("\(q): \(key) \(w) vs \(v)"); break }
                    }
                case (.failure(let x), .failure(let y)):
                    #expect("\(x)" == "\(y)", "\(q)")
                default:
                    Issue.record("\(q): matrix \(a), steps \(b)")
                }
            }
        }
        #expect(nonEmpty > 300, "\(nonEmpty) of \(compared) comparisons had data")
    }

    static func flat(_ r: QueryResult) -> [String: Double] {
        guard case .matrix(let series) = r else { return [:] }
        var out: [String: Double] = [:]
        for s in series { for (t, v) in s.points { out["\(s.labels.text)@\(t)"] = v } }
        return out
    }
}

/// Reads larger than half the decoded-chunk cache decode chunks inside the range straight into the
/// series' columns; the samples must be the same as through the cache, edges included.
@Test func largeReadsDecodeStraightIntoColumns() throws {
    let t0: Int64 = 1_700_000_000_000
    var text = ""
    text.reserveCapacity(8 << 20)
    for i in 0..<100_000 {
        let t = t0 + Int64(i) * 1_000
        text += "big_total{k=\"a\"} \(i * 3) \(t)\nbig_gauge{k=\"b\"} \(Double(i % 97) / 4) \(t)\n"
    }
    let (store, dir) = try storeWith(text)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let ids = try store.seriesCatalog().map(\.id)
    #expect(ids.count == 2)
    let from = t0 + 1_234_500, to = t0 + 98_765_400 // off the sample grid at both ends
    let big = try #require(try store.sampleColumns(ids: ids, from: from, to: to))
    for id in ids {
        let c = try #require(big[id])
        #expect(c.count == 97_531)
        #expect(c.t.first == t0 + 1_235_000 && c.t.last == t0 + 98_765_000)
        #expect(zip(c.t, c.t.dropFirst()).allSatisfy { $0 < $1 })
        // The same stretch in small reads (through the cache) gives the same samples.
        var small = SampleColumns()
        var a = from
        while a <= to {
            let b = min(a + 5_000_000, to)
            let part = try #require(try store.sampleColumns(ids: [id], from: a, to: b)?[id])
            small = SampleColumns(t: small.t + part.t, v: small.v + part.v)
            a = b + 1
        }
        #expect(small.t == c.t && small.v == c.v)
    }
    #expect(try store.sampleColumns(ids: ids, from: from, to: to, limit: 100_000) == nil)
}
