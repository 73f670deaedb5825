import Foundation
import Testing
import TwinCore
@testable import TwinServer

/// Requests an attacker would send, against the real binary on loopback (issue 12). Each gets a clear
/// 4xx, and the process stays up and keeps answering `/healthz`.
@Suite(.serialized) struct HostileRequestTests {
    /// A served store of QueryTests' data; `body` gets the port.
    static func withServer(_ extra: [String] = [], _ body: (Int, String, Int32) throws -> Void) throws {
        let dir = try temporaryDirectory("hosttwin-hostile")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try QueryTests.data.write(toFile: dir + "/data.prom", atomically: true, encoding: .utf8)
        #expect(try EndToEndTests.cli(["import", "--data-dir", dir + "/store", dir + "/data.prom"]).status == 0)
        let port = try ServerTests.freePort()
        let serve = try ServerTests.start(["serve", "--data-dir", dir + "/store", "--listen", "127.0.0.1:\(port)"] + extra)
        defer { serve.terminate(); serve.waitUntilExit() }
        #expect(try EndToEndTests.eventually(20) { LoopbackHTTP.get(port: port, "/healthz")?.status == 200 })
        try body(port, dir, serve.processIdentifier)
        #expect(serve.isRunning, "the server died")
        #expect(LoopbackHTTP.get(port: port, "/healthz")?.status == 200)
    }

    static let hostileTimes = ["+4611686018427387000ms4611686018427387000ms", "-4611686018427387000ms4611686018427387000ms",
                               "1e300", "-9223372036854775809", "+99999999999y", "9223372036854775807"]

    /// Every time and duration parameter of every route refuses absurd values with a 400 that names it.
    @Test func timeParametersSaturateOrRefuse() throws {
        try Self.withServer { port, _, _ in
            // The defect as reported: this request killed the process.
            let killer = ServerTests.get(port, "/api/v1/twin/state?at=%2B4611686018427387000ms4611686018427387000ms")
            #expect(killer.0 == 400 && (killer.1["error"] as? String ?? "").contains("\"at\""), "\(killer)")
            let routes: [(String, String)] = [
                ("/api/v1/query?query=1", "time"), ("/api/v1/query_range?query=1&end=1&step=1", "start"),
                ("/api/v1/query_range?query=1&start=1&step=1", "end"), ("/api/v1/query_range?query=1&start=1&end=2", "step"),
                ("/api/v1/query?query=1", "timeout"), ("/api/v1/twin/state?x=1", "at"), ("/api/v1/twin/entities/processes?x=1", "at"),
                ("/api/v1/twin/diff?x=1", "from"), ("/api/v1/twin/diff?x=1", "to"), ("/api/v1/twin/events?x=1", "from"),
                ("/api/v1/twin/events?x=1", "to"), ("/api/v1/twin/sql?query=select+1", "at"), ("/api/v1/twin/anomalies?x=1", "since"),
                ("/api/v1/twin/anomalies?x=1", "to"), ("/api/v1/twin/anomalies?x=1", "history"),
                ("/api/v1/twin/forecast?query=temp", "horizon"), ("/api/v1/twin/forecast?query=temp", "history"),
            ]
            for (route, param) in routes {
                for value in Self.hostileTimes where !(value.hasPrefix("9") && param == "step") {
                    let (status, body) = ServerTests.get(port, route + "&\(param)=\(ServerTests.q(value))")
                    let message = body["error"] as? String ?? ""
                    // A huge value may be a valid (empty) time for the Prometheus routes; it must not crash or 5xx.
                    #expect((status == 400 && message.contains(param)) || status == 200 || status == 422, "\(route) \(param)=\(value): \(status) \(message)")
                }
            }
        }
    }

    /// A subquery of 259 million steps is refused at once (it took 40 s and 4 GB before), and every
    /// intermediate sample counts against the same budget.
    @Test func subqueriesCountAgainstTheSampleBudget() throws {
        try Self.withServer { port, _, _ in
            for q in ["count_over_time(vector(1)[3d:1ms])", "count_over_time(vector(1)[30d:1ms])", "max_over_time(count_over_time(vector(1)[1d:10ms])[1h:1s])"] {
                let started = Date()
                let (status, body) = ServerTests.get(port, "/api/v1/query?query=\(ServerTests.q(q))")
                #expect(status == 422 && (body["error"] as? String ?? "").contains("too many samples"), "\(q): \(status) \(body)")
                #expect(Date().timeIntervalSince(started) < 3, "\(q) took \(Date().timeIntervalSince(started)) s")
            }
            // Within the budget the same shape still answers.
            let ok = ServerTests.get(port, "/api/v1/query?query=\(ServerTests.q("count_over_time(vector(1)[1h:1s])"))")
            #expect(ok.0 == 200)
        }
    }

    /// SQL may not build gigabytes: the answer, a single value and SQLite's heap are all capped.
    @Test func sqlQueriesHaveAMemoryCap() throws {
        try Self.withServer { port, _, _ in
            for held in ["WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 2000) SELECT i, zeroblob(1000000) AS b FROM r ORDER BY i DESC",
                         "WITH RECURSIVE r(i, b) AS (SELECT 1, zeroblob(1000000) UNION SELECT i + 1, zeroblob(1000000) FROM r WHERE i < 2000) SELECT count(*) FROM r",
                         "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 2000) SELECT count(DISTINCT randomblob(1000000)) FROM r"] {
                let big = ServerTests.get(port, "/api/v1/twin/sql?query=\(ServerTests.q(held))")
                #expect(big.0 == 422 && (big.1["error"] as? String ?? "").contains("memory"), "\(big)")
            }
            let concat = "WITH RECURSIVE r(i, s) AS (SELECT 1, 'x' UNION ALL SELECT i + 1, s || s FROM r WHERE i < 40) SELECT max(length(s)) FROM r"
            let value = ServerTests.get(port, "/api/v1/twin/sql?query=\(ServerTests.q(concat))")
            #expect(value.0 == 422, "\(value)")
            let rows = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 5000) SELECT printf('%.8000c', 'x') FROM r"
            let answer = ServerTests.get(port, "/api/v1/twin/sql?query=\(ServerTests.q(rows))")
            #expect(answer.0 == 422 && (answer.1["error"] as? String ?? "").contains("larger than"), "\(answer)")
            #expect(ServerTests.get(port, "/api/v1/twin/sql?query=\(ServerTests.q("select 1 as one"))").0 == 200)
        }
    }

    /// DNS rebinding: a foreign name in `Host` is refused; the server's own names are answered.
    @Test func foreignHostHeadersAreRefused() throws {
        try Self.withServer(["--allowed-host", "twin.example.org"]) { port, _, _ in
            func status(_ host: String) -> Int? {
                LoopbackHTTP.request(port: port, method: "GET", path: "/api/v1/query?query=1", headers: ["Host": host])?.status
            }
            #expect(status("evil.example.com") == 403)
            #expect(status("evil.example.com:\(port)") == 403)
            #expect(status("127.0.0.2:\(port)") == 403)
            #expect(status("localhost:\(port)") == 200)
            #expect(status("127.0.0.1:\(port)") == 200)
            #expect(status("[::1]:\(port)") == 200)
            #expect(status("TWIN.example.org") == 200)
            let page = LoopbackHTTP.request(port: port, method: "GET", path: "/", headers: ["Host": "rebind.attacker.net"])
            #expect(page?.status == 403 && page?.body.contains("allowed-host") == true)
        }
    }

    /// A regex that makes a backtracking engine run for ever answers at once, and other queries are not held up.
    @Test func slowRegexesNeitherStallNorOverrun() throws {
        try Self.withServer { port, _, _ in
            let evil = "{__name__=~\"(a+)+(b+)+(c+)+(.*a){12}x\",room=~\"((a|a)*)*z\"}"
            let started = Date()
            let r = ServerTests.get(port, "/api/v1/query?query=\(ServerTests.q(evil))")
            #expect(r.0 == 200)
            let replace = "label_replace(temp, \"x\", \"$1\", \"room\", \"((a+)+)+(b)?\")"
            #expect(ServerTests.get(port, "/api/v1/query?query=\(ServerTests.q(replace))").0 == 200)
            #expect(Date().timeIntervalSince(started) < 3)
            #expect(ServerTests.get(port, "/api/v1/series?match[]=\(ServerTests.q(evil))").0 == 200)
        }
    }

    /// The data directory and its files are private; a planted `writer.lock` link is refused, not followed.
    @Test func dataDirectoryIsPrivateAndLinksAreNotFollowed() throws {
        let dir = try temporaryDirectory("hosttwin-perm")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = dir + "/store"
        let port = try ServerTests.freePort()
        #expect(try EndToEndTests.cli(["run", "--data-dir", store, "--ticks", "2", "--listen", "127.0.0.1:\(port)", "--log-level", "warning"]).status == 0)
        func mode(_ path: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int) ?? -1 }
        #expect(mode(store) == 0o700)
        for entry in try FileManager.default.contentsOfDirectory(atPath: store) {
            let path = store + "/" + entry
            var isDir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
            #expect(mode(path) == (isDir.boolValue ? 0o700 : 0o600), "\(entry): \(String(mode(path), radix: 8))")
        }
        // `check` reads only: the database file is byte for byte the same afterwards.
        let before = try Data(contentsOf: URL(fileURLWithPath: store + "/twin.db"))
        #expect(try EndToEndTests.cli(["check", "--data-dir", store]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: store + "/twin.db")) == before)

        // A link planted where the lock goes: the writer refuses and the target is untouched.
        let target = dir + "/victim"
        try "precious\n".write(toFile: target, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: store + "/writer.lock")
        try FileManager.default.createSymbolicLink(atPath: store + "/writer.lock", withDestinationPath: target)
        let refused = try EndToEndTests.cli(["run", "--data-dir", store, "--ticks", "1", "--listen", "127.0.0.1:\(port)", "--log-level", "warning"])
        #expect(refused.status != 0 && refused.stderr.contains("symbolic link"), "\(refused.stderr)")
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "precious\n")
    }

    /// A connected TCP socket to 127.0.0.1:`port` (receive timeout `timeout` s), or nil.
    static func connectLoopback(_ port: Int, timeout: Int = 5) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 } }
        if !ok { close(fd) }
        return ok ? fd : nil
    }

    /// Raw bytes on a loopback connection; the answer's status line (nil when the server closed without one).
    static func raw(_ port: Int, _ bytes: [UInt8], timeout: Int = 5) -> String? {
        guard let fd = connectLoopback(port, timeout: timeout) else { return nil }
        defer { close(fd) }
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            sent += n
        }
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buf, buf.count, 0)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n], as: UTF8.self).split(separator: "\r\n").first.map(String.init)
    }

    /// Malformed and oversized HTTP, path traversal, invalid UTF-8 and deep expressions: each a 4xx or a
    /// closed connection, never a crash, never a file outside the dashboard.
    @Test func malformedRequestsGetAClearRefusal() throws {
        try Self.withServer { port, _, _ in
            for path in ["/assets/../../../../etc/passwd", "/assets/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2f..%2fetc%2fpasswd",
                         "/assets/..%5c..%5cetc%5cpasswd", "/assets/app.js%00.png", "//etc/passwd", "/assets/"] {
                let r = LoopbackHTTP.request(port: port, method: "GET", path: path)
                #expect(r?.status == 404 || r?.status == 400, "\(path): \(String(describing: r?.status))")
                #expect(r?.body.contains("root:") != true)
            }
            let huge = String(repeating: "a", count: 100_000)
            #expect(Self.raw(port, Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: \(huge)\r\n\r\n".utf8)).map { $0.contains(" 4") } ?? true)
            let many = (0..<300).map { "X-H\($0): v\r\n" }.joined()
            #expect(Self.raw(port, Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\(many)\r\n".utf8)).map { $0.contains(" 4") } ?? true)
            for junk in ["GARBAGE\r\n\r\n", "GET\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "GET /healthz HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                         "POST /api/v1/query HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"] {
                #expect(Self.raw(port, Array(junk.utf8)).map { $0.contains(" 4") } ?? true, "\(junk.debugDescription)")
            }
            // Invalid UTF-8 in the path and in parameters.
            let bad: [UInt8] = Array("GET /api/v1/query?query=".utf8) + [0xff, 0xfe, 0xc0, 0x80] + Array(" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
            #expect(Self.raw(port, bad).map { $0.contains(" 4") } ?? true)
            #expect(ServerTests.get(port, "/api/v1/query?query=%ff%fe%80").0 == 400)
            #expect(ServerTests.get(port, "/api/v1/twin/sql?query=%ff%fe%80").0 == 400)
            // Deep nesting and long chains, by form POST (1 MiB at most).
            for expr in [String(repeating: "(", count: 200_000) + "1" + String(repeating: ")", count: 200_000),
                         Array(repeating: "1", count: 200_000).joined(separator: "+"), String(repeating: "-", count: 300_000) + "1",
                         String(repeating: "sum(", count: 100_000) + "up" + String(repeating: ")", count: 100_000)] {
                let r = LoopbackHTTP.request(port: port, method: "POST", path: "/api/v1/query", contentType: "application/x-www-form-urlencoded",
                                             body: ServerTests.form(["query": expr]))
                #expect(r?.status == 400 || r?.status == 413, "\(expr.prefix(20)): \(String(describing: r?.status))")
            }
            let deepSQL = "select " + String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000)
            #expect(ServerTests.get(port, "/api/v1/twin/sql?query=\(ServerTests.q(deepSQL))").0 == 400)
        }
    }

    /// A slow client, hundreds of idle connections and heavy queries in flight: `/healthz` still answers
    /// within a second, and the server's memory stays under 100 MB.
    @Test func slowAndManyClientsDoNotStarveHealth() throws {
        try Self.withServer { port, _, pid in
            // Idle connections, and one that dribbles a request's headers a byte at a time.
            var idle: [Int32] = []
            defer { for fd in idle { close(fd) } }
            for _ in 0..<500 {
                guard let fd = Self.connectLoopback(port) else { continue }
                idle.append(fd)
                if idle.count % 2 == 0 { _ = send(fd, "GET /api/v1/query?query=1 HTTP/1.1\r\nHo", 39, Int32(MSG_NOSIGNAL)) }
            }
            #expect(idle.count == 500)
            // Heavy queries from several callers at once, in the background.
            let heavy = DispatchGroup()
            for i in 0..<6 {
                DispatchQueue.global().async(group: heavy) {
                    _ = LoopbackHTTP.get(port: port, "/api/v1/query?query=\(ServerTests.q("count_over_time(vector(\(i))[1h:1s])"))", timeout: 30)
                }
            }
            var worst = 0.0
            for _ in 0..<10 {
                let started = Date()
                #expect(LoopbackHTTP.get(port: port, "/healthz", timeout: 5)?.status == 200)
                worst = max(worst, Date().timeIntervalSince(started))
                usleep(100_000)
            }
            heavy.wait()
            #expect(worst < 1, "healthz took \(worst) s under load")
            let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            let peakKB = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }.flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true)[1]) } ?? 0
            #expect(peakKB > 0 && peakKB < 100 * 1024, "peak RSS \(peakKB) kB")
            print("hostile load: /healthz worst \(Int(worst * 1000)) ms with \(idle.count) idle/half-sent connections and 6 heavy queries; server peak RSS \(peakKB / 1024) MB")
        }
    }
}
