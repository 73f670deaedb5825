import Foundation
import Testing
import TwinCore
@testable import TwinStorage

/// The exposition parser and the bulk import path.
@Suite struct ImportTests {
    func parse(_ text: String) -> (samples: [(String, Double, Int64?)], types: [String: MetricType], errors: [String], help: [String: String]) {
        var samples: [(String, Double, Int64?)] = []
        var types: [String: MetricType] = [:]
        var help: [String: String] = [:]
        var errors: [String] = []
        let bytes = Array(text.utf8)
        bytes.withUnsafeBytes { raw in
            var p = ExpositionParser(raw)
            while true {
                do {
                    guard let line = try p.next() else { break }
                    switch line {
                    case .sample(let r, let v, let t): samples.append((String(decoding: UnsafeRawBufferPointer(rebasing: raw[r]), as: UTF8.self), v, t))
                    case .type(let n, let t): types[n] = t
                    case .help(let n, let text): help[n] = text
                    }
                } catch { errors.append("\(error)") }
            }
        }
        return (samples, types, errors, help)
    }

    @Test func readsPrometheusAndOpenMetricsText() {
        let r = parse("""
            # HELP node_load1 1m load average.
            # HELP escaped  A \\\\ backslash,\\t kept and a\\nline.
            # TYPE node_load1 gauge
            node_load1 0.25 1700000000000
            # TYPE http_requests counter
            http_requests_total{code="200",path="/a b}c\\"d"} 1027 1700000000.5\r
            up 1
            weird{a="1"} NaN 1700000000123
            inf_metric +Inf 1700000000
            with_exemplar_bucket{le="0.1"} 8 1700000000 # {trace_id="x"} 0.05 1700000000
              indented -3.5e-2 1700000000000
            # EOF
            """)
        #expect(r.errors.isEmpty, "\(r.errors)")
        #expect(r.types == ["node_load1": .gauge, "http_requests": .counter])
        #expect(r.help == ["node_load1": "1m load average.", "escaped": "A \\ backslash,\\t kept and a\nline."], "HELP texts with their escapes undone")
        #expect(r.samples.map(\.0) == ["node_load1", "http_requests_total{code=\"200\",path=\"/a b}c\\\"d\"}", "up", "weird{a=\"1\"}", "inf_metric", "with_exemplar_bucket{le=\"0.1\"}", "indented"])
        #expect(r.samples[0].2 == 1_700_000_000_000, "integer milliseconds")
        #expect(r.samples[1].2 == 1_700_000_000_500, "fractional seconds")
        #expect(r.samples[2].2 == nil)
        #expect(r.samples[3].1.isNaN)
        #expect(r.samples[4].1 == .infinity && r.samples[4].2 == 1_700_000_000_000, "integer seconds below 10^11")
        #expect(r.samples[6].1 == -0.035)
    }

    @Test func malformedLinesAreNamedAndSkipped() {
        let r = parse("""
            ok 1 1700000000000
            no_value
            bad_value abc
            hex 0x10
            far_future 1 99999999999999999
            unterminated{a="1 2
            too many fields 1 2
            {a="1"} 5
            fine 2 1700000001000
            """)
        #expect(r.samples.map(\.0) == ["ok", "fine"])
        #expect(r.errors.count == 7, "\(r.errors)")
        #expect(r.errors[0].hasPrefix("line 2:"))
        #expect(r.errors.contains { $0.contains("line 5:") && $0.contains("timestamp") })
    }

    @Test func garbageNeverCrashes() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("ab{}\"=,\\ #\n\t.0123456789eE+-NaInf".utf8)
        for _ in 0..<300 {
            let bytes = (0..<Int.random(in: 0...300, using: &rng)).map { _ in Bool.random(using: &rng) ? alphabet.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng) }
            _ = parse(String(decoding: bytes, as: UTF8.self))
        }
    }

    /// Import stores exactly what the text says, bit for bit; importing it again stores nothing twice;
    /// bad lines are counted with their line numbers and the good ones kept.
    @Test func importIsExactAndIdempotent() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var text = "# TYPE x_total counter\n"
        var rng = SystemRandomNumberGenerator()
        var expected: [Double] = []
        for i in 0..<2000 {
            let v = i % 3 == 0 ? Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &rng)) : Double(i) * 0.1
            expected.append(v)
            let s = v.isNaN ? "NaN" : v == .infinity ? "+Inf" : v == -.infinity ? "-Inf" : "\(v)"
            text += "x_total{job=\"a\"} \(s) \(1_700_000_000_000 + Int64(i) * 1000)\n"
            if i == 1000 { text += "this is not a sample\n" }
        }
        let file = dir + "/in.prom"
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        for pass in 0..<2 {
            let store = try TwinStore.open(dataDir: dir + "/store")
            let w = TwinWriter(store: store)
            try w.open()
            let imp = BulkImporter(writer: w, batchSize: 300)
            try imp.importFile(file)
            try w.finish(now: 0)
            #expect(imp.stats.badLines == 1 && imp.stats.problems.contains { $0.hasPrefix("line 1003:") }, "\(imp.stats.problems.first ?? "")")
            #expect(imp.stats.samples == (pass == 0 ? 2000 : 0) && imp.stats.rejected == (pass == 0 ? 0 : 2000))
            let got = try #require(try store.samples(SeriesKey("x_total", Labels(["job": "a"])), from: 0, to: .max))
            // Text has one NaN: payloads of random NaN bit patterns do not survive it; everything else is bit-exact.
            #expect(got.count == expected.count)
            #expect(zip(got, expected).allSatisfy { $0.1.isNaN ? $1.isNaN : $0.1.bitPattern == $1.bitPattern })
            #expect(try store.series().first?.type == .counter)
        }
    }
}
