import Foundation
import Testing
import TwinCore
@testable import TwinServer
import TwinAnalytics
import TwinQuery
import NIOCore
import Logging
import TwinStorage
@testable import TwinRuntime

/// The HTTP API of the real binary on loopback: the Prometheus-compatible endpoints, the state API and
/// SQL, the live stream, `/metrics`, and every kind of bad request.
@Suite(.serialized) struct ServerTests {
    static func freePort() throws -> Int {
        let (fd, port) = try EndToEndTests.listeningSocket()
        close(fd)
        return port
    }

    static func start(_ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try #require(EndToEndTests.binary, "build the hosttwin executable first (swift build)"))
        p.arguments = args + ["--log-level", "warning"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    static func json(_ body: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }

    static func get(_ port: Int, _ path: String) -> (Int, [String: Any]) {
        guard let r = LoopbackHTTP.get(port: port, path, timeout: 10) else { return (0, [:]) }
        return (r.status, json(r.body))
    }

    static func form(_ params: [String: String]) -> [UInt8] {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return Array(params.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&").utf8)
    }

    static func q(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed)!
    }

    /// Values in query results are written straight into the response as Go's 'f' form, exponent or not,
    /// exactly as the string formatter writes them.
    @Test func valuesAreWrittenAsGoWritesThem() {
        var rng = SeededGenerator(seed: 7)
        var values: [Double] = [0.1, -0.1, 1.5e-5, -3.3333333333333335e-05, 5e-324, 1e-300, 1.7976931348623157e308, 1e21, 1e15 + 0.5,
                                123456789.125, 0.0001, 0.00001, 9.999999999999999e22, -2.5e-7]
        for _ in 0..<2000 {
            let m = Double.random(in: 1..<10, using: &rng), e = Double(Int.random(in: -30...30, using: &rng))
            values.append((Bool.random(using: &rng) ? -1 : 1) * m * pow(10, e))
        }
        for v in values {
            var j = JSONText()
            j.point(0, v)
            #expect(j.out == "[0,\"\(PromNumber.format(v))\"]", "\(v)")
        }
    }

    @Test func prometheusAPIAndBadRequests() throws {
        let dir = try temporaryDirectory("hosttwin-server")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ("# HELP temp Room temperature, \\\\ in \\n degrees.\n" + QueryTests.data).write(toFile: dir + "/data.prom", atomically: true, encoding: .utf8)
        #expect(try EndToEndTests.cli(["import", "--data-dir", dir + "/store", dir + "/data.prom"]).status == 0)
        let port = try Self.freePort()
        let serve = try Self.start(["serve", "--data-dir", dir + "/store", "--listen", "127.0.0.1:\(port)"])
        defer { serve.terminate(); serve.waitUntilExit() }
        #expect(try EndToEndTests.eventually(20) { LoopbackHTTP.get(port: port, "/healthz")?.status == 200 })
        let t = QueryTests.t0 / 1000
        // The summary of a server over stored data: not live, no tick summary, the stored span.
        let summary = Self.get(port, "/api/v1/summary")
        #expect(summary.0 == 200 && summary.1["live"] as? Bool == false && summary.1["summary"] == nil)
        #expect((summary.1["stored"] as? [String: Any])?["from"] as? String == TwinTime.rfc3339(QueryTests.t0))

        // Instant query: the envelope, value pairs as [seconds, "string"].
        var (status, body) = Self.get(port, "/api/v1/query?query=\(Self.q("temp * 2"))&time=\(t + 100)")
        #expect(status == 200 && body["status"] as? String == "success")
        let data = body["data"] as? [String: Any]
        #expect(data?["resultType"] as? String == "vector")
        let first = (data?["result"] as? [[String: Any]])?.first
        // Series carry the job and instance a Prometheus scrape adds (instance: this host, the store having none).
        #expect(first?["metric"] as? [String: String] == ["room": "a", "job": "node", "instance": HostName.local])
        #expect((first?["value"] as? [Any])?.last as? String == "20")
        #expect(((first?["value"] as? [Any])?.first as? NSNumber)?.int64Value == t + 100)

        // Times print as seconds with the milliseconds' significant digits; scalars as [time, "value"].
        let scalar = try #require(LoopbackHTTP.get(port: port, "/api/v1/query?query=time()&time=\(t + 100).250"))
        #expect(scalar.body.contains("\"result\":[\(t + 100).25,\"\(t + 100).25\"]"), "\(scalar.body)")

        // Range query by form POST, as Grafana sends it.
        let post = try #require(LoopbackHTTP.request(port: port, method: "POST", path: "/api/v1/query_range", contentType: "application/x-www-form-urlencoded",
                                                    body: Self.form(["query": "rate(requests_total[1m])", "start": "\(t + 100)", "end": "\(t + 200)", "step": "50s"])))
        #expect(post.status == 200)
        let series = ((Self.json(post.body)["data"] as? [String: Any])?["result"] as? [[String: Any]])?.first
        #expect((series?["values"] as? [[Any]])?.map { $0[1] as? String } == ["1", "1", "1"])

        (status, body) = Self.get(port, "/api/v1/series?match[]=\(Self.q("cpu_seconds_total{mode=\"user\"}"))")
        #expect(status == 200 && (body["data"] as? [[String: String]])?.count == 2)
        (status, body) = Self.get(port, "/api/v1/labels")
        #expect(Set(body["data"] as? [String] ?? []) == ["__name__", "cpu", "job", "instance", "mode", "room"])
        // A series that has its own job keeps it (honor_labels).
        #expect(Self.get(port, "/api/v1/label/job/values").1["data"] as? [String] == ["api", "node"])
        // start/end: only series with samples in the range (the data spans t0 to t0 + 600 s).
        #expect((Self.get(port, "/api/v1/series?match[]=temp&start=\(t + 100)&end=\(t + 200)").1["data"] as? [Any])?.count == 1)
        #expect((Self.get(port, "/api/v1/series?match[]=temp&start=\(t - 7200)&end=\(t - 3600)").1["data"] as? [Any])?.isEmpty == true)
        #expect((Self.get(port, "/api/v1/labels?start=\(t + 3600)").1["data"] as? [Any])?.isEmpty == true)
        #expect((Self.get(port, "/api/v1/label/room/values?end=\(t - 1)").1["data"] as? [Any])?.isEmpty == true)
        #expect(Self.get(port, "/api/v1/label/room/values?start=\(t)&end=\(t + 1)").1["data"] as? [String] == ["a"])
        (status, body) = Self.get(port, "/api/v1/label/mode/values")
        #expect(body["data"] as? [String] == ["idle", "user"])
        (status, body) = Self.get(port, "/api/v1/metadata")
        #expect(((body["data"] as? [String: Any])?["temp"] as? [[String: Any]])?.first?["type"] != nil)
        // The imported HELP text is kept, escapes undone.
        #expect(((body["data"] as? [String: Any])?["temp"] as? [[String: Any]])?.first?["help"] as? String == "Room temperature, \\ in \n degrees.")
        (status, body) = Self.get(port, "/api/v1/status/buildinfo")
        #expect(status == 200 && (body["data"] as? [String: Any])?["version"] as? String == "2.42.0")
        // What Grafana asks besides queries: the hub's rules (the built-in set) and alerts; no exemplars are kept.
        let groups = ((Self.get(port, "/api/v1/rules").1["data"] as? [String: Any])?["groups"] as? [[String: Any]]) ?? []
        #expect(groups.contains { $0["name"] as? String == "hosttwin.state" }, "\(groups)")
        #expect(((Self.get(port, "/api/v1/alerts").1["data"] as? [String: Any])?["alerts"] as? [Any]) != nil)
        #expect((Self.get(port, "/api/v1/query_exemplars?query=temp&start=\(t)&end=\(t + 60)").1["data"] as? [Any])?.isEmpty == true)

        // Bad input: the right status, Prometheus' error type, a message that says what is wrong.
        func expectError(_ path: String, _ code: Int, _ type: String, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
            let (s, b) = Self.get(port, path)
            #expect(s == code, "\(path): status \(s)", sourceLocation: sourceLocation)
            #expect(b["status"] as? String == "error" && b["errorType"] as? String == type, "\(path): \(b)", sourceLocation: sourceLocation)
            #expect((b["error"] as? String ?? "").contains(fragment), "\(path): \(b["error"] ?? "")", sourceLocation: sourceLocation)
        }
        expectError("/api/v1/query?query=\(Self.q("sum(rate(x[5m]) by"))", 400, "bad_data", "1:17: parse error")
        expectError("/api/v1/query", 400, "bad_data", "no expression found")
        expectError("/api/v1/query?query=up&time=yesterday", 400, "bad_data", "invalid parameter \"time\"")
        expectError("/api/v1/query_range?query=temp&start=\(t + 100)&end=\(t)&step=15", 400, "bad_data", "end timestamp must not be before start time")
        expectError("/api/v1/query_range?query=temp&start=\(t)&end=\(t + 100)&step=0", 400, "bad_data", "zero or negative")
        expectError("/api/v1/query_range?query=temp&start=0&end=\(t)&step=1", 400, "bad_data", "11,000 points")
        expectError("/api/v1/query_range?query=temp&start=\(t)&end=\(t + 100)&step=15&max_source_resolution=5h", 400, "bad_data", "max_source_resolution")
        #expect(Self.get(port, "/api/v1/query_range?query=temp&start=\(t)&end=\(t + 600)&step=300&max_source_resolution=auto").0 == 200)
        expectError("/api/v1/query_range?query=temp&start=\(t)&end=\(t + 100)&step=1e30", 400, "bad_data", "step")
        expectError("/api/v1/query_range?query=temp%5B5m%5D&start=\(t)&end=\(t + 100)&step=15", 400, "bad_data", "range vector")
        expectError("/api/v1/query?query=\(Self.q("cpu_seconds_total / on (mode) cpu_seconds_total"))&time=\(t + 100)", 422, "execution", "many-to-many")
        expectError("/api/v1/query?query=%FF%FE%00", 400, "bad_data", "parse error")
        expectError("/api/v1/series", 400, "bad_data", "no match[]")
        expectError("/api/v1/label/bad-name/values", 400, "bad_data", "invalid label name")
        expectError("/api/v1/twin/entities/nonsense", 404, "not_found", "unknown entity kind")
        expectError("/no/such/route", 404, "not_found", "no such endpoint")

        let wrongMethod = try #require(LoopbackHTTP.request(port: port, method: "DELETE", path: "/api/v1/query"))
        #expect(wrongMethod.status == 405 && wrongMethod.headers["allow"] == "GET, HEAD, POST")
        let huge = try #require(LoopbackHTTP.request(port: port, method: "POST", path: "/api/v1/query", contentType: "application/x-www-form-urlencoded",
                                                    body: Array(repeating: UInt8(ascii: "a"), count: 3 << 20)))
        #expect(huge.status == 413)
        let jsonBody = try #require(LoopbackHTTP.request(port: port, method: "POST", path: "/api/v1/query", contentType: "application/json", body: Array("{}".utf8)))
        #expect(jsonBody.status == 415)

        // SQL refusals: writes, ATTACH, PRAGMA, file functions, several statements, runaway queries.
        func sql(_ query: String) -> (Int, [String: Any]) { Self.get(port, "/api/v1/twin/sql?query=\(Self.q(query))") }
        for (query, code, type) in [("delete from processes", 403, "forbidden"), ("insert into processes(key) values ('x')", 403, "forbidden"),
                                    ("attach database '/tmp/x.db' as x", 403, "forbidden"), ("pragma table_info(processes)", 403, "forbidden"),
                                    ("select load_extension('/tmp/x')", 403, "forbidden"), ("create table t(x)", 403, "forbidden"),
                                    ("select 1; select 2", 400, "bad_data"), ("selec nonsense", 400, "bad_data"), ("", 400, "bad_data"),
                                    ("with recursive c(x) as (select 1 union all select x + 1 from c limit 20000) select x from c", 422, "execution"),
                                    ("with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c", 503, "timeout")] {
            let (s, b) = sql(query)
            #expect(s == code && b["errorType"] as? String == type, "\(query): \(s) \(b)")
        }
        // Forecasts: the data here is years old, so nothing is in the last week; bad parameters are refused.
        (status, body) = Self.get(port, "/api/v1/twin/forecast?query=temp&horizon=1h")
        #expect(status == 200 && (body["data"] as? [Any])?.isEmpty == true)
        expectError("/api/v1/twin/forecast?query=temp%7B&horizon=1h", 400, "bad_data", "parse error")
        expectError("/api/v1/twin/forecast?query=temp&horizon=1h&below=x", 400, "bad_data", "below")
        expectError("/api/v1/twin/forecast?query=temp&horizon=-5", 400, "bad_data", "horizon")
                let ok = sql("select count(*) as n from processes")
        #expect(ok.0 == 200 && ok.1["columns"] as? [String] == ["n"])

        // Nothing above changed the store or the server.
        #expect(LoopbackHTTP.get(port: port, "/healthz")?.status == 200)
        (status, body) = Self.get(port, "/api/v1/query?query=count_over_time(temp%5B10m%5D)&time=\(t + 600)")
        #expect(((body["data"] as? [String: Any])?["result"] as? [[String: Any]])?.first.flatMap { ($0["value"] as? [Any])?.last as? String } == "61")
        #expect(try EndToEndTests.cli(["check", "--data-dir", dir + "/store"]).status == 0)
    }

    @Test func stateSQLLiveAndMetricsOnARunningTwin() throws {
        let dir = try temporaryDirectory("hosttwin-server-run")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = try Self.freePort()
        let run = try Self.start(["run", "--data-dir", dir, "--listen", "127.0.0.1:\(port)", "--interval", "500ms"])
        defer { run.terminate(); run.waitUntilExit() }
        #expect(try EndToEndTests.eventually(20) { Self.get(port, "/healthz").1["status"] as? String == "ok" })
        usleep(1_200_000)
        let me = getpid()

        // SQL as of now: this test process is in `processes`.
        let (s, b) = Self.get(port, "/api/v1/twin/sql?query=\(Self.q("select pid, name from processes where pid = \(me)"))")
        #expect(s == 200)
        #expect((b["rows"] as? [[Any]])?.first?.first as? Int == Int(me), "\(b)")
        // ... and as of before the run began, nothing.
        let before = Self.get(port, "/api/v1/twin/sql?query=\(Self.q("select count(*) from processes"))&at=-1h").1
        #expect(((before["rows"] as? [[Any]])?.first?.first as? Int) == 0)

        let state = Self.get(port, "/api/v1/twin/entities/processes?at=now").1
        let entities = (state["data"] as? [String: Any])?["entities"] as? [[String: Any]] ?? []
        #expect(entities.contains { ($0["attributes"] as? [String: Any])?["pid"] as? Int == Int(me) })
        // The diff from before the run began: everything appeared. `limit=1` lists one of each kind and counts all.
        // Both to the same moment, a second back: ticks up to it are committed (a tick takes far less), so both
        // calls see the same versions; the twin has collected for over two seconds by then.
        usleep(1_000_000)
        let to = String(format: "%.3f", Date().timeIntervalSince1970 - 1)
        let whole = (Self.get(port, "/api/v1/twin/diff?from=-1h&to=\(to)").1["data"] as? [String: Any]) ?? [:]
        let appeared = (whole["appeared"] as? [[String: Any]]) ?? []
        let perKind = Dictionary(grouping: appeared) { $0["kind"] as? String ?? "" }.mapValues(\.count)
        #expect(perKind["processes", default: 0] > 1 && whole["truncated"] as? Bool == false, "\(perKind)")
        let one = (Self.get(port, "/api/v1/twin/diff?from=-1h&to=\(to)&limit=1").1["data"] as? [String: Any]) ?? [:]
        let listed = ((one["appeared"] as? [[String: Any]]) ?? []).map { $0["kind"] as? String ?? "" }
        let counted = ((one["counts"] as? [String: [String: Any]]) ?? [:]).compactMapValues { $0["appeared"] as? Int }.filter { $0.value > 0 }
        #expect(listed.sorted() == perKind.keys.sorted() && counted == perKind && one["truncated"] as? Bool == true, "\(listed) \(counted)")
        for bad in ["0", "-5", "abc", "99999999999999999999", "1e3", ""] {
            #expect(Self.get(port, "/api/v1/twin/diff?from=-1m&to=now&limit=\(bad)").0 == 400, "limit=\(bad)")
        }
        #expect(Self.get(port, "/api/v1/twin/events?from=-1m").0 == 200)
        #expect(Self.get(port, "/api/v1/twin/state?at=garbage").0 == 400)

        // PromQL over the live store (head samples from the log).
        let cpu = Self.get(port, "/api/v1/query?query=\(Self.q("sum by (mode) (node_cpu_seconds_total)"))").1
        #expect(((cpu["data"] as? [String: Any])?["result"] as? [Any])?.isEmpty == false)

        // /metrics: node_exporter names plus HostTwin's own; OpenMetrics on request.
        let text = try #require(LoopbackHTTP.request(port: port, method: "GET", path: "/metrics"))
        #expect(text.body.contains("\nnode_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} ") && text.body.contains("hosttwin_ticks_total "))
        // The first read has the families collected once a minute (at the run's first tick, not since):
        // from the store, as neither of the two ticks the live view holds has them.
        #expect(text.body.contains("\nnode_uname_info{") && text.body.contains("# TYPE node_uname_info gauge"), "\(text.body.prefix(300))")
        #expect(text.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        // The Date header (formatted when a response is written in a new second) and the server's name.
        let sent = Int(Date().timeIntervalSince1970)
        let date = try #require(text.headers["date"])
        #expect([sent - 1, sent, sent + 1].map(HTTPDateHeader.format).contains(date), "Date: \(date)")
        #expect(text.headers["server"] == "hosttwin")
        let om = try #require(LoopbackHTTP.request(port: port, method: "GET", path: "/metrics", headers: ["Accept": "application/openmetrics-text; version=1.0.0"]))
        #expect(om.headers["content-type"]?.hasPrefix("application/openmetrics-text") == true)
        #expect(om.body.hasSuffix("# EOF\n") && om.body.contains("# TYPE node_cpu_seconds counter\n") && !om.body.contains("# TYPE node_cpu_seconds_total"))
        // The loop's own counters are stored at the `self` collector's runs: in PromQL as any series, and on
        // /metrics once (from the registry, not the stored copy too).
        let own = Self.get(port, "/api/v1/query?query=\(Self.q("hosttwin_ticks_total + hosttwin_ticks_skipped_total"))").1
        let ownTicks = (((own["data"] as? [String: Any])?["result"] as? [[String: Any]])?.first?["value"] as? [Any])?.last as? String
        #expect(ownTicks.flatMap(Double.init).map { $0 >= 0 } == true, "\(own)") // 0 until the self collector's second run, 5 s in
        let series = text.body.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { $0[..<($0.lastIndex(of: " ") ?? $0.endIndex)] }
        #expect(series.count == Set(series).count, "\(Dictionary(grouping: series) { $0 }.filter { $0.value.count > 1 }.keys.prefix(5))")
        let typeLines = text.body.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }
        #expect(typeLines.count == Set(typeLines).count)

        // The dashboard: one page for its routes, its own files, a policy that forbids other origins;
        // revalidation by ETag; gzip when asked (and not for tiny or refused cases).
        for path in ["/", "/host", "/forecast?at=-1h"] {
            let page = try #require(LoopbackHTTP.request(port: port, method: "GET", path: path))
            #expect(page.status == 200 && page.headers["content-type"]?.hasPrefix("text/html") == true && page.body.contains("/assets/app.js"), "\(path)")
            #expect(page.headers["content-security-policy"]?.contains("default-src 'self'") == true)
        }
        let js = try #require(LoopbackHTTP.request(port: port, method: "GET", path: "/assets/app.js"))
        #expect(js.status == 200 && js.headers["content-type"]?.hasPrefix("text/javascript") == true && js.body.contains("/api/v1/query_range"))
        let etag = try #require(js.headers["etag"])
        #expect(LoopbackHTTP.request(port: port, method: "GET", path: "/assets/app.js", headers: ["If-None-Match": etag])?.status == 304)
        let packed = try #require(LoopbackHTTP.request(port: port, method: "GET", path: "/assets/app.js", headers: ["Accept-Encoding": "gzip, deflate"]))
        #expect(packed.headers["content-encoding"] == "gzip" && Int(packed.headers["content-length"] ?? "") ?? .max < js.body.utf8.count / 2)
        #expect(LoopbackHTTP.request(port: port, method: "GET", path: "/assets/app.js", headers: ["Accept-Encoding": "gzip;q=0"])?.headers["content-encoding"] == nil)
        #expect(LoopbackHTTP.request(port: port, method: "GET", path: "/api/v1/query?query=1", headers: ["Accept-Encoding": "gzip"])?.headers["content-encoding"] == nil, "under 1 KiB")
        #expect(LoopbackHTTP.request(port: port, method: "GET", path: "/assets/nothing.js")?.status == 404)

        // The live stream: a tick event with a summary within a few seconds.
        var ticks = 0
        let streamStatus = LoopbackHTTP.stream(port: port, "/api/v1/twin/live") { line in
            if line.hasPrefix("data: "), (Self.json(String(line.dropFirst(6)))["summary"] as? [String: Any])?["cpu_count"] != nil { ticks += 1 }
            return ticks < 2
        }
        #expect(streamStatus == 200 && ticks == 2)

        // The CLI uses the same engines.
        let q = try EndToEndTests.cli(["query", "count(node_cpu_seconds_total)", "--data-dir", dir, "--json"])
        #expect(q.status == 0 && q.stdout.contains("\"resultType\":\"vector\""))
        let bad = try EndToEndTests.cli(["query", "rate(node_cpu_seconds_total[5m)", "--data-dir", dir])
        #expect(bad.status != 0 && bad.stderr.contains("parse error") && bad.stderr.contains("^"))
        let sqlCLI = try EndToEndTests.cli(["sql", "select name from processes where pid = \(me)", "--data-dir", dir, "--json"])
        #expect(sqlCLI.status == 0 && sqlCLI.stdout.contains("\"columns\""))
    }
}

/// gzip content coding: what the server sends inflates back to the original, and `Accept-Encoding`
/// is read as HTTP defines it.
/// The `Date` header as RFC 9110 writes it (IMF-fixdate), checked against Foundation's formatter.
@Suite struct HTTPDateHeaderTests {
    @Test func formatsIMFFixdate() {
        #expect(HTTPDateHeader.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT") // RFC 9110's example
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        var random = SeededRandom(seed: 11)
        for _ in 0..<200 {
            let t = Int(random.next() % 4_102_444_800) // 1970 to 2100
            #expect(HTTPDateHeader.format(t) == f.string(from: Date(timeIntervalSince1970: Double(t))))
        }
        let now = Int(Date().timeIntervalSince1970)
        #expect([now, now + 1].map(HTTPDateHeader.format).contains(HTTPDateHeader().now()))
    }
}

/// Query strings and form bodies: every parameter of every request goes through this decoder.
@Suite struct FormDecodingTests {
    @Test func formValuesAreDecodedAsURLSearchParamsAre() {
        #expect(Params.decode("rate(node_cpu_seconds_total%7Bmode%3D%22idle%22%7D%5B5m%5D)") == "rate(node_cpu_seconds_total{mode=\"idle\"}[5m])")
        #expect(Params.decode("a+b%2Bc") == "a b+c")
        #expect(Params.decode("caf%C3%A9") == "café")
        #expect(Params.decode("plain") == "plain")
        // A malformed escape or bytes that are not UTF-8 leave the escapes as written, `+` still a space.
        #expect(Params.decode("100%+sure%2") == "100% sure%2")
        #expect(Params.decode("%zz+x") == "%zz x")
        #expect(Params.decode("%FF%FE") == "%FF%FE")
        var p = Params(query: "query=up&start=1&query=node_load1+%3E+0&empty")
        p.add(form: "step=15")
        #expect(p["query"] == "node_load1 > 0" && p.all("query") == ["up", "node_load1 > 0"] && p["empty"] == "" && p["step"] == "15")
    }
}

@Suite struct GzipTests {
    @Test func roundTripAndNegotiation() throws {
        var random = SeededRandom(seed: 7)
        let text = (0..<5000).map { _ in "{\"value\":\"\(random.next() % 1000)\"}," }.joined()
        let packed = try #require(Gzip.deflate(ByteBuffer(string: text).readableBytesView))
        #expect(packed.count < text.utf8.count / 3)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("hosttwin-gzip-\(getpid()).gz").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        FileManager.default.createFile(atPath: file, contents: Data(packed))
        #expect(try NABCorpus.gunzip(file) == Array(text.utf8))
        #expect(Gzip.accepted("gzip, deflate, br") && Gzip.accepted("deflate;q=1.0, gzip;q=0.5") && Gzip.accepted("*"))
        #expect(!Gzip.accepted(nil) && !Gzip.accepted("deflate") && !Gzip.accepted("gzip;q=0") && !Gzip.accepted("br, gzip; q=0"))
    }
}

/// PromQL queries are first run on the request's own task under a small budget, and again on a worker
/// thread under the full limits when they outgrow it: the answer is the same either way.
@Suite struct SmallQueryTests {
    @Test func aQueryOverTheSmallBudgetIsAnsweredInFull() async throws {
        let dir = try temporaryDirectory("hosttwin-small")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try QueryTests.data.write(toFile: dir + "/data.prom", atomically: true, encoding: .utf8)
        #expect(try EndToEndTests.cli(["import", "--data-dir", dir + "/store", dir + "/data.prom"]).status == 0)
        let store = try TwinStore.open(dataDir: dir + "/store", readOnly: true)
        var api = TwinAPI(store: store, live: nil, metrics: SelfMetrics.bootstrap(), logger: Logger(label: "test"))
        let path = "/api/v1/query_range?query=\(ServerTests.q("sum by (cpu) (rate(cpu_seconds_total[1m]))"))&start=\(QueryTests.t0 / 1000 + 120)&end=\(QueryTests.t0 / 1000 + 600)&step=15"
        let whole = await api.get(path)
        #expect(whole.status == 200 && whole.body.contains("\"cpu\":\"0\""), "\(whole)")
        // Three samples fit the first attempt of nothing: every query goes round to the worker.
        api.smallQueryBudget.maxSamples = 3
        let again = await api.get(path)
        #expect(again.status == 200 && again.body == whole.body)
        // The full limits still hold on the worker.
        api.engine.maxSamples = 3
        let refused = await api.get(path)
        #expect(refused.status == 422 && refused.body.contains("too many samples"), "\(refused)")
    }
}

/// `/metrics`' latest values, kept by series id once it has been read: a series a tick did not collect keeps
/// its last value for the lookback, a series twice in a tick keeps its first, ids beyond the slots are kept too.
@Suite struct LiveTwinLatestTests {
    @Test func latestValuesFollowTheTicksBySeriesID() {
        let live = LiveTwin()
        let a = SeriesKey("node_load1"), b = SeriesKey("node_memory_MemFree_bytes"), far = SeriesKey("far_id")
        func latest() -> [String: Double] {
            Dictionary(uniqueKeysWithValues: (live.latestSamples()?.samples ?? []).map { ($0.key.metric, $0.value) })
        }
        func tick(_ t: Int64, _ samples: [(SeriesKey, Double)], ids: [Int64]) {
            live.update(samples: samples.map { MetricSample($0.0, $0.1) }, ids: ids, host: nil, health: [], tick: t)
        }
        let t0: Int64 = 1_800_000_000_000
        tick(t0, [(a, 1), (b, 2)], ids: [1, 2])
        tick(t0 + 1000, [(a, 3)], ids: [1])
        #expect(latest() == ["node_load1": 3, "node_memory_MemFree_bytes": 2]) // seeded from the last two ticks
        tick(t0 + 2000, [(a, 4), (far, 9)], ids: [1, Int64(LatestValues.maxSlots) + 5])
        #expect(latest() == ["node_load1": 4, "node_memory_MemFree_bytes": 2, "far_id": 9])
        // A series twice in a tick: the store kept its first sample.
        let samples = [MetricSample(a, 5), MetricSample(b, 6), MetricSample(a, 7)]
        let ids = LiveTwin.ids(of: samples, stored: [1, 2])
        #expect(ids == [1, 2, -1])
        live.update(samples: samples, ids: ids, host: nil, health: [], tick: t0 + 3000)
        #expect(latest() == ["node_load1": 5, "node_memory_MemFree_bytes": 6, "far_id": 9])
        // Past the 5-minute lookback, series no tick collected leave.
        tick(t0 + 3000 + LiveTwin.stale + 1000, [(a, 8)], ids: [1])
        #expect(latest() == ["node_load1": 8])
    }

    /// `/metrics`' first read starts from the store's latest values (a family collected less often than
    /// every tick is in neither of the two ticks held); a tick's newer value wins over a seed's, and a seed
    /// given to a later read is ignored.
    @Test func theFirstReadIsSeededFromTheStore() {
        let live = LiveTwin()
        let t0: Int64 = 1_800_000_000_000
        let load = SeriesKey("node_load1"), files = SeriesKey("hosttwin_files_suid"), far = SeriesKey("far_total")
        live.update(samples: [MetricSample(load, 1)], ids: [1], host: nil, health: [], tick: t0)
        #expect(!live.keepsLatest)
        let seed = [LiveTwin.Seed(id: 1, key: load, type: .gauge, time: t0 - 5000, value: 0.5),
                    LiveTwin.Seed(id: 7, key: files, type: .gauge, time: t0 - 14_000, value: 12),
                    LiveTwin.Seed(id: Int64(LatestValues.maxSlots) + 2, key: far, type: .counter, time: t0 - 3000, value: 4)]
        let first = live.latestSamples(seed: seed)
        #expect(live.keepsLatest)
        #expect(Dictionary(uniqueKeysWithValues: (first?.samples ?? []).map { ($0.key.metric, $0.value) })
                == ["node_load1": 1, "hosttwin_files_suid": 12, "far_total": 4])
        #expect(first?.types["far_total"] == .counter && first?.types["hosttwin_files_suid"] == .gauge)
        live.update(samples: [MetricSample(load, 2)], ids: [1], host: nil, health: [], tick: t0 + 1000)
        let again = live.latestSamples(seed: [LiveTwin.Seed(id: 7, key: files, type: .gauge, time: t0 + 1000, value: 99)])
        #expect(Dictionary(uniqueKeysWithValues: (again?.samples ?? []).map { ($0.key.metric, $0.value) })
                == ["node_load1": 2, "hosttwin_files_suid": 12, "far_total": 4])
    }

    /// The types `/metrics` prints are taken for the series new to it, in slots and beyond them.
    @Test func typesComeWithNewSeries() {
        let live = LiveTwin()
        let t0: Int64 = 1_800_000_000_000
        let c = SeriesKey("node_cpu_seconds_total"), far = SeriesKey("far_total")
        live.update(samples: [MetricSample(c, 1)], ids: [1], types: ["node_cpu_seconds_total": .counter], host: nil, health: [], tick: t0)
        #expect(live.latestSamples()?.types == ["node_cpu_seconds_total": .counter])
        live.update(samples: [MetricSample(c, 2), MetricSample(far, 3)], ids: [1, Int64(LatestValues.maxSlots) + 1],
                    types: ["node_cpu_seconds_total": .counter, "far_total": .counter, "unused": .gauge], host: nil, health: [], tick: t0 + 1000)
        #expect(live.latestSamples()?.types == ["node_cpu_seconds_total": .counter, "far_total": .counter])
    }
}
