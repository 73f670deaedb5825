import Foundation
import Testing
import TwinCore
import TwinSecurity
@testable import TwinServer

/// Tokens, roles, TLS and the audit log, against the real binary on loopback (issue 12).
@Suite(.serialized) struct AccessTests {
    /// A store of QueryTests' data with one token per role.
    struct Fixture {
        var dir: String
        var store: String { dir + "/store" }
        var tokens: [Role: String] = [:]
    }

    static func fixture() throws -> Fixture {
        var f = Fixture(dir: try temporaryDirectory("hosttwin-access"))
        try QueryTests.data.write(toFile: f.dir + "/data.prom", atomically: true, encoding: .utf8)
        #expect(try EndToEndTests.cli(["import", "--data-dir", f.store, f.dir + "/data.prom"]).status == 0)
        for role in Role.allCases {
            let r = try EndToEndTests.cli(["token", "create", "--role", role.rawValue, "--data-dir", f.store] + (role == .agent ? ["--host", "web1"] : []))
            #expect(r.status == 0, "\(r.stderr)")
            f.tokens[role] = r.stdout.split(separator: "\n").last.map(String.init)
        }
        return f
    }

    static func serve(_ f: Fixture, _ extra: [String]) throws -> (Process, Int) {
        let port = try ServerTests.freePort()
        let p = try ServerTests.start(["serve", "--data-dir", f.store, "--listen", "127.0.0.1:\(port)"] + extra)
        return (p, port)
    }

    static func status(_ port: Int, _ path: String, token: String?, method: String = "GET") -> Int? {
        LoopbackHTTP.request(port: port, method: method, path: path, headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:])?.status
    }

    /// Every registered route, with every role and with no token: what its declared access says.
    @Test func everyRouteWithEveryRole() throws {
        let f = try Self.fixture()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let (serve, port) = try Self.serve(f, ["--auth", "required"])
        defer { serve.terminate(); serve.waitUntilExit() }
        #expect(try EndToEndTests.eventually(20) { LoopbackHTTP.get(port: port, "/healthz")?.status == 200 })
        let catalog = TwinAPI.routeCatalog
        #expect(catalog.count >= 25)
        var walked = 0
        for route in catalog {
            for role in [nil] + Role.allCases {
                let status = try #require(Self.status(port, route.path, token: role.flatMap { f.tokens[$0] }), "\(route.path) gave no answer")
                walked += 1
                if route.access.allows(role) {
                    // 503: the live stream on `serve`, which observes nothing.
                    #expect(status != 401 && status != 403 && (status < 500 || status == 503), "\(route.name) as \(role?.rawValue ?? "nobody"): \(status)")
                } else {
                    #expect(status == (role == nil ? 401 : 403), "\(route.name) as \(role?.rawValue ?? "nobody"): \(status), expected \(role == nil ? 401 : 403)")
                }
            }
        }
        #expect(walked == catalog.count * (Role.allCases.count + 1))
        // Hostile follow requests (a relay token, this `serve` is a hub): a clear 400, never a stream.
        for form in ["held=web-1", "held=web-1:zz:1", "held=:1:1", "after=-3", "after=x", "held=web-1:1:99999999999999999999999"] {
            let r = LoopbackHTTP.request(port: port, method: "POST", path: "/api/v1/sync/follow",
                                         headers: ["Authorization": "Bearer \(f.tokens[.relay]!)", "Content-Type": "application/x-www-form-urlencoded"], body: Array(form.utf8))
            #expect(r?.status == 400, "\(form): \(r?.status ?? 0) \(r?.body.prefix(200) ?? "")")
        }
        // Hostile reconciliation requests (an agent token for web1): a clear 400 (or 409 for a host the hub
        // does not hold), never a crash or a rewind.
        for (path, form, status) in [("reconcile", "host=web1&epoch=zz", 400), ("reconcile", "host=web1&epoch=1&range=5-2@0-1", 400),
                                     ("reconcile", "host=web1&epoch=1&range=0-2@0-1", 400), ("reconcile", "host=web1&epoch=1&range=1-2@9-1", 400),
                                     ("reconcile", "host=web1&epoch=1&range=1-2", 400), ("reconcile", "host=web1&epoch=1&range=1-2@0-1&state_at=x", 400),
                                     ("reconcile", "host=web1&epoch=1&" + Array(repeating: "range=1-2@0-1", count: 49).joined(separator: "&"), 400),
                                     ("reconcile", "host=web1&epoch=1&range=1-2@0-1", 409), ("rewind", "host=web1&epoch=1", 400),
                                     ("rewind", "host=web1&epoch=1&to=-1", 400), ("rewind", "host=web1&epoch=1&to=5", 409), ("rewind", "host=db2&epoch=1&to=5", 403)] {
            let r = LoopbackHTTP.request(port: port, method: "POST", path: "/api/v1/sync/\(path)",
                                         headers: ["Authorization": "Bearer \(f.tokens[.agent]!)", "Content-Type": "application/x-www-form-urlencoded"], body: Array(form.utf8))
            #expect(r?.status == status, "\(path) \(form.prefix(80)): \(r?.status ?? 0) \(r?.body.prefix(200) ?? "")")
        }
        // docs/SECURITY.md lists every route with what it needs.
        let doc = try String(contentsOfFile: Fixtures.packageRoot + "/docs/SECURITY.md", encoding: .utf8)
        for route in catalog {
            #expect(doc.contains("| `\(route.name)` | \(route.methods) | \(route.access.rawValue) |"), "docs/SECURITY.md lacks the row of \(route.name)")
        }
    }

    /// Hostile silence requests: readers cannot add or expire one; bad matchers, no comment, an end in the
    /// past and bad ids get 4xx with a message; nothing is stored by a refused request; a long comment is cut.
    @Test func hostileSilenceRequests() throws {
        let f = try Self.fixture()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let port = try ServerTests.freePort()
        let run = try ServerTests.start(["run", "--data-dir", f.store, "--listen", "127.0.0.1:\(port)", "--no-default-rules"])
        defer { run.terminate(); run.waitUntilExit() }
        #expect(try EndToEndTests.eventually(20) { LoopbackHTTP.get(port: port, "/healthz")?.status == 200 })
        func post(_ path: String, _ form: String, _ role: Role?) -> (status: Int, body: String)? {
            var headers = ["Content-Type": "application/x-www-form-urlencoded"]
            if let role { headers["Authorization"] = "Bearer \(f.tokens[role]!)" }
            return LoopbackHTTP.request(port: port, method: "POST", path: path, headers: headers, body: Array(form.utf8)).map { ($0.status, $0.body) }
        }
        let good = "matcher=alertname%3DDiskFull&for=1h&comment=maintenance"
        #expect(post("/api/v1/silences", good, nil)?.status == 401)
        #expect(post("/api/v1/silences", good, .reader)?.status == 403)
        for (form, says) in [("matcher=alertname%3D~%28&for=1h&comment=x", "matcher"), ("matcher=%3D%3D%3D&for=1h&comment=x", "matcher"),
                             ("matcher=alertname%3DX&for=1h", "comment"), ("matcher=alertname%3DX&for=-1h&comment=x", "for"),
                             ("matcher=alertname%3DX&ends=2000-01-01T00:00:00Z&comment=x", "ends"), ("matcher=alertname%3DX&for=forever&comment=x", "for")] {
            let r = post("/api/v1/silences", form, .admin)
            #expect(r?.status == 400 && r?.body.contains(says) == true, "\(form): \(r.map { "\($0.status) \($0.body)" } ?? "no answer")")
        }
        let listed = { LoopbackHTTP.request(port: port, method: "GET", path: "/api/v1/silences?all=1", headers: ["Authorization": "Bearer \(f.tokens[.reader]!)"])?.body ?? "" }
        #expect(!listed().contains("alertname=X"), "nothing stored by a refused request")
        let long = String(repeating: "w", count: 5000)
        let made = post("/api/v1/silences", good.replacingOccurrences(of: "maintenance", with: long), .admin)
        #expect(made?.status == 200, "\(made.map { "\($0.status) \($0.body)" } ?? "")")
        #expect(listed().contains(String(repeating: "w", count: 1000)) && !listed().contains(String(repeating: "w", count: 1001)))
        #expect(post("/api/v1/silences/expire", "id=1", .reader)?.status == 403)
        #expect(post("/api/v1/silences/expire", "id=abc", .admin)?.status == 400)
        #expect(post("/api/v1/silences/expire", "id=999", .admin)?.status == 404)
        #expect(post("/api/v1/silences/expire", "id=1", .admin)?.status == 200)
    }

    /// Loopback without TLS: no token reads; admin routes still need one; bad, revoked and expired tokens
    /// are refused; repeated failures from one source are throttled.
    @Test func anonymousReadersTokensAndThrottling() throws {
        let f = try Self.fixture()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        // `run` (a writable store: tokens can be created over the API; `serve` answers 503 for that).
        let port = try ServerTests.freePort()
        let serve = try ServerTests.start(["run", "--data-dir", f.store, "--listen", "127.0.0.1:\(port)"])
        defer { serve.terminate(); serve.waitUntilExit() }
        #expect(try EndToEndTests.eventually(20) { LoopbackHTTP.get(port: port, "/healthz")?.status == 200 })
        #expect(Self.status(port, "/api/v1/query?query=1", token: nil) == 200)
        #expect(Self.status(port, "/api/v1/admin/tokens", token: nil) == 401)
        #expect(Self.status(port, "/api/v1/admin/tokens", token: f.tokens[.admin]) == 200)

        // An admin creates a short-lived reader token over the API, uses it, revokes it.
        let created = try #require(LoopbackHTTP.request(port: port, method: "POST", path: "/api/v1/admin/tokens", contentType: "application/x-www-form-urlencoded",
                                                        headers: ["Authorization": "Bearer \(f.tokens[.admin]!)"], body: Array("role=reader&expires=2s&name=ci".utf8)))
        #expect(created.status == 200)
        let data = ServerTests.json(created.body)["data"] as? [String: Any]
        let token = try #require(data?["token"] as? String)
        let id = try #require((data?["info"] as? [String: Any])?["id"] as? String)
        #expect(Self.status(port, "/api/v1/query?query=1", token: token) == 200)
        let listed = try #require(LoopbackHTTP.request(port: port, method: "GET", path: "/api/v1/admin/tokens", headers: ["Authorization": "Bearer \(f.tokens[.admin]!)"]))
        #expect(listed.body.contains(id) && !listed.body.contains(String(token.suffix(64))), "a listing never shows a secret")
        usleep(2_100_000)
        #expect(Self.status(port, "/api/v1/query?query=1", token: token) == 401, "expired")
        let revoke = LoopbackHTTP.request(port: port, method: "POST", path: "/api/v1/admin/tokens/revoke", contentType: "application/x-www-form-urlencoded",
                                          headers: ["Authorization": "Bearer \(f.tokens[.admin]!)"], body: Array("id=\(f.tokens[.reader]!.dropFirst(4).prefix(12))".utf8))
        #expect(revoke?.status == 200)
        #expect(Self.status(port, "/api/v1/query?query=1", token: f.tokens[.reader]) == 401, "revoked")
        // A token with one secret digit changed is refused like an unknown one.
        var forged = Array(f.tokens[.admin]!)
        forged[forged.count - 1] = forged.last == "0" ? "1" : "0"
        #expect(Self.status(port, "/api/v1/query?query=1", token: String(forged)) == 401)

        // Live streams: 16 per caller; the 17th is refused while they are open.
        var streams: [Int32] = []
        for _ in 0..<16 {
            let fd = try #require(HostileRequestTests.connectLoopback(port))
            let req = "GET /api/v1/twin/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            _ = send(fd, req, req.utf8.count, Int32(MSG_NOSIGNAL))
            var buf = [UInt8](repeating: 0, count: 256)
            _ = recv(fd, &buf, buf.count, 0) // the stream's head: it is open
            streams.append(fd)
        }
        #expect(Self.status(port, "/api/v1/twin/live", token: nil) == 429)
        for fd in streams { close(fd) }
        #expect(try EndToEndTests.eventually(5) { Self.status(port, "/healthz", token: nil) == 200 })

        // Ten failures within a minute (the three above count) and the source is throttled, good token or not.
        for _ in 0..<7 { _ = Self.status(port, "/api/v1/query?query=1", token: "htw_000000000000_" + String(repeating: "0", count: 64)) }
        let throttled = LoopbackHTTP.request(port: port, method: "GET", path: "/api/v1/query?query=1", headers: ["Authorization": "Bearer \(f.tokens[.admin]!)"])
        #expect(throttled?.status == 429 && Int(throttled?.headers["retry-after"] ?? "") ?? 0 > 0, "\(String(describing: throttled))")
        #expect(Self.status(port, "/healthz", token: nil) == 200, "the open route stays open")
    }

    /// Listening beyond loopback needs TLS or --insecure.
    @Test func nonLoopbackNeedsTLSOrInsecure() throws {
        let f = try Self.fixture()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let port = try ServerTests.freePort()
        let refused = try EndToEndTests.cli(["serve", "--data-dir", f.store, "--listen", "0.0.0.0:\(port)"])
        #expect(refused.status == 1 && refused.stderr.contains("without TLS") && refused.stderr.contains("--insecure"), "\(refused.stderr)")
        let run = try EndToEndTests.cli(["run", "--data-dir", f.dir + "/run", "--listen", "0.0.0.0:\(port)", "--ticks", "1"])
        #expect(run.status == 1 && run.stderr.contains("without TLS"))
        // --insecure starts, says so loudly, and still wants a token off loopback.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try #require(EndToEndTests.binary))
        p.arguments = ["serve", "--data-dir", f.store, "--listen", "0.0.0.0:\(port)", "--insecure"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        #expect(try EndToEndTests.eventually(20) { LoopbackHTTP.get(port: port, "/healthz")?.status == 200 })
        #expect(Self.status(port, "/api/v1/query?query=1", token: nil) == 401)
        #expect(Self.status(port, "/api/v1/query?query=1", token: f.tokens[.reader]) == 200)
        p.terminate()
        p.waitUntilExit()
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("INSECURE"))
        for token in f.tokens.values { #expect(!log.contains(String(token.suffix(64))), "a secret in the log") }
    }

    /// A throwaway CA (openssl from Debian), a server certificate for 127.0.0.1 and a client certificate.
    static func makeCA(_ dir: String) throws -> Bool {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") else { return false }
        let script = """
        set -e
        cd '\(dir)'
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=hosttwin-test-ca 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=client 2>/dev/null
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 2>/dev/null
        openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2 -subj /CN=other-ca 2>/dev/null
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script]
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    /// HTTPS with a private CA: the CLI verifies the server against --ca; with --tls-client-ca the
    /// server wants a client certificate from that CA.
    @Test func tlsAndMutualTLS() throws {
        let f = try Self.fixture()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        try #require(try Self.makeCA(f.dir), "openssl could not make a test CA")
        try f.tokens[.reader]!.write(toFile: f.dir + "/reader.token", atomically: true, encoding: .utf8)
        let (serve, port) = try Self.serve(f, ["--tls-cert", f.dir + "/server.pem", "--tls-key", f.dir + "/server.key"])
        defer { serve.terminate(); serve.waitUntilExit() }
        let url = "https://127.0.0.1:\(port)"
        let query = ["query", "temp", "--at", "\(QueryTests.t0 / 1000 + 100)", "--url", url, "--token-file", f.dir + "/reader.token"]
        #expect(try EndToEndTests.eventually(20) { try EndToEndTests.cli(query + ["--ca", f.dir + "/ca.pem"]).status == 0 })
        let ok = try EndToEndTests.cli(query + ["--ca", f.dir + "/ca.pem"])
        #expect(ok.stdout.contains("temp{") && ok.stdout.contains("room=\"a\"") && ok.stdout.contains("10"), "\(ok.stdout) \(ok.stderr)")
        // TLS means tokens are required: the same query without one is refused.
        let anonymous = try EndToEndTests.cli(["query", "temp", "--url", url, "--ca", f.dir + "/ca.pem"])
        #expect(anonymous.status != 0 && anonymous.stderr.contains("401"), "\(anonymous.stderr)")
        // A CA that did not sign the server's certificate: refused by the client.
        let wrongCA = try EndToEndTests.cli(query + ["--ca", f.dir + "/other.pem"])
        #expect(wrongCA.status != 0 && wrongCA.stderr.lowercased().contains("certificate"), "\(wrongCA.stderr)")
        // Plain HTTP to the TLS port gets nothing.
        #expect(LoopbackHTTP.get(port: port, "/healthz", timeout: 3)?.status == nil)

        // Mutual TLS.
        let (mtls, mport) = try Self.serve(f, ["--tls-cert", f.dir + "/server.pem", "--tls-key", f.dir + "/server.key", "--tls-client-ca", f.dir + "/ca.pem"])
        defer { mtls.terminate(); mtls.waitUntilExit() }
        let murl = ["--url", "https://127.0.0.1:\(mport)", "--ca", f.dir + "/ca.pem", "--token-file", f.dir + "/reader.token"]
        #expect(try EndToEndTests.eventually(20) { try EndToEndTests.cli(["query", "1"] + murl + ["--client-cert", f.dir + "/client.pem", "--client-key", f.dir + "/client.key"]).status == 0 })
        let noCert = try EndToEndTests.cli(["query", "1"] + murl)
        #expect(noCert.status != 0, "a client without a certificate got in: \(noCert.stdout)")
    }

    /// Every request lands in the hash-chained log; `audit verify` finds an edit, a deletion, an
    /// insertion and records cut from the end; no secret is ever written.
    @Test func auditLogIsCompleteAndTamperEvident() throws {
        let f = try Self.fixture()
        defer { try? FileManager.default.removeItem(atPath: f.dir) }
        let (serve, port) = try Self.serve(f, [])
        #expect(try EndToEndTests.eventually(20) { LoopbackHTTP.get(port: port, "/healthz")?.status == 200 })
        #expect(Self.status(port, "/api/v1/query?query=1", token: f.tokens[.reader]) == 200)
        #expect(Self.status(port, "/api/v1/admin/tokens", token: f.tokens[.reader]) == 403)
        #expect(Self.status(port, "/api/v1/twin/state", token: nil) == 200)
        serve.terminate()
        serve.waitUntilExit()
        let audit = f.store + "/audit"
        let show = try EndToEndTests.cli(["audit", "show", "--data-dir", f.store, "--json"])
        let records = (try JSONSerialization.jsonObject(with: Data(show.stdout.utf8))) as? [[String: Any]] ?? []
        let readerID = String(f.tokens[.reader]!.dropFirst(4).prefix(12))
        #expect(records.contains { $0["action"] as? String == "GET /api/v1/query" && $0["token"] as? String == readerID && $0["status"] as? Int == 200 && $0["source"] as? String == "127.0.0.1" })
        #expect(records.contains { $0["action"] as? String == "GET /api/v1/admin/tokens" && $0["status"] as? Int == 403 })
        #expect(records.contains { $0["action"] as? String == "token.create" && $0["kind"] as? String == "admin" })
        let text = try String(contentsOfFile: audit + "/audit.log", encoding: .utf8)
        for token in f.tokens.values { #expect(!text.contains(String(token.suffix(64)))) }
        #expect(try EndToEndTests.cli(["audit", "verify", "--data-dir", f.store]).status == 0)

        let original = text
        var lines = original.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        func verifyAfter(_ tampered: String) throws -> EndToEndTests.CLIResult {
            try tampered.write(toFile: audit + "/audit.log", atomically: true, encoding: .utf8)
            defer { try? original.write(toFile: audit + "/audit.log", atomically: true, encoding: .utf8) }
            return try EndToEndTests.cli(["audit", "verify", "--data-dir", f.store])
        }
        let edited = try verifyAfter(original.replacingOccurrences(of: "\"status\":403", with: "\"status\":200"))
        #expect(edited.status == 1 && edited.stdout.contains("BROKEN"), "\(edited.stdout)")
        var deleted = lines
        deleted.remove(at: 2)
        #expect(try verifyAfter(deleted.joined(separator: "\n")).status == 1)
        var inserted = lines
        inserted.insert(lines[1], at: 2)
        #expect(try verifyAfter(inserted.joined(separator: "\n")).status == 1)
        lines.removeLast(3) // the last two records and the trailing empty string
        let cut = try verifyAfter(lines.joined(separator: "\n") + "\n")
        #expect(cut.status == 1 && cut.stdout.contains("cut from the end"), "\(cut.stdout)")
        #expect(try EndToEndTests.cli(["audit", "verify", "--data-dir", f.store]).status == 0, "restored")
    }
}
