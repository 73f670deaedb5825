import Foundation
import Testing
import TwinCore
@testable import TwinServer
import TwinStorage

/// The fleet with the real binary on loopback: an agent pushes to a hub (`serve`), the hub is killed and
/// comes back, and the hub's copy of the host equals the agent's store — nothing lost, nothing doubled.
@Suite(.serialized) struct FleetTests {
    static func token(_ hubDir: String, host: String) throws -> String {
        let r = try EndToEndTests.cli(["token", "create", "--role", "agent", "--host", host, "--data-dir", hubDir])
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.split(separator: "\n").last.map(String.init) ?? ""
    }

    static func cursor(_ port: Int, token: String, host: String = "web-1") -> (Int, UInt64) {
        guard let r = LoopbackHTTP.request(port: port, method: "GET", path: "/api/v1/sync/cursor?host=\(host)", headers: ["Authorization": "Bearer \(token)"]) else { return (0, 0) }
        let through = (ServerTests.json(r.body)["applied_through"] as? NSNumber)?.uint64Value ?? 0
        return (r.status, through)
    }

    @Test func agentPushesThroughAHubKilledAndRestarted() throws {
        let dir = try temporaryDirectory("hosttwin-fleet")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hubDir = dir + "/hub", agentDir = dir + "/agent"
        let token = try Self.token(hubDir, host: "web-1")
        let stranger = try Self.token(hubDir, host: "db-2")
        try token.write(toFile: dir + "/agent.token", atomically: true, encoding: .utf8)
        let port = try ServerTests.freePort()
        var hub = try ServerTests.start(["serve", "--data-dir", hubDir, "--listen", "127.0.0.1:\(port)"])
        defer { if hub.isRunning { hub.terminate(); hub.waitUntilExit() } }
        #expect(try EndToEndTests.eventually(20) { LoopbackHTTP.get(port: port, "/healthz")?.status == 200 })
        let agent = try ServerTests.start(["agent", "--data-dir", agentDir, "--host-name", "web-1", "--interval", "500ms",
                                           "--push", "http://127.0.0.1:\(port)", "--token-file", dir + "/agent.token"])
        defer { if agent.isRunning { agent.terminate(); agent.waitUntilExit() } }
        #expect(try EndToEndTests.eventually(30) { Self.cursor(port, token: token).1 >= 6 }, "the hub never received 6 ticks")

        // A token bound to another host may neither read this host's cursor nor push for it.
        #expect(Self.cursor(port, token: stranger).0 == 403)
        let forged = LoopbackHTTP.request(port: port, method: "POST", path: "/api/v1/sync/push?host=web-1", headers: ["Authorization": "Bearer \(stranger)"], body: [0, 0, 0, 0])
        #expect(forged?.status == 403)
        // Hostile pushes get a refusal, never a crash: garbage, a frame announcing 4 GiB, a stream cut
        // inside a frame, an unknown content coding, a zstd body that is not zstd.
        func push(_ body: [UInt8], headers extra: [String: String] = [:]) -> (Int, String) {
            let r = LoopbackHTTP.request(port: port, method: "POST", path: "/api/v1/sync/push?host=web-1",
                                         headers: ["Authorization": "Bearer \(token)"].merging(extra) { a, _ in a }, body: body, timeout: 10)
            return (r?.status ?? 0, r?.body ?? "")
        }
        #expect(push([0, 0, 0, 5] + Array("hello".utf8)).1.contains("\"refused\""))
        #expect(push([0xff, 0xff, 0xff, 0xff, 1, 2, 3]).1.contains("exceeds"))
        #expect(push([0, 0, 1, 0, 1, 2]).1.contains("inside a frame"))
        #expect(push([1, 2, 3], headers: ["Content-Encoding": "br"]).0 == 415)
        #expect(push(Array("not zstd at all".utf8), headers: ["Content-Encoding": "zstd"]).1.contains("\"refused\""))
        // The live lane refuses what is not a batch standing alone; an unknown lane is a bad request.
        func live(_ body: [UInt8], lane: String = "live") -> (Int, String) {
            let r = LoopbackHTTP.request(port: port, method: "POST", path: "/api/v1/sync/push?host=web-1&lane=\(lane)",
                                         headers: ["Authorization": "Bearer \(token)"], body: body, timeout: 10)
            return (r?.status ?? 0, r?.body ?? "")
        }
        #expect(live([0, 0, 0, 5] + Array("hello".utf8)).1.contains("\"refused\""))
        #expect(live([0xff, 0xff, 0xff, 0xff, 1]).1.contains("exceeds"))
        #expect(live([], lane: "sideways").0 == 400)
        #expect(LoopbackHTTP.get(port: port, "/healthz")?.status == 200)
        let audit = try EndToEndTests.cli(["audit", "show", "--data-dir", hubDir, "--json"]).stdout
        #expect(audit.contains("/api/v1/sync/push") && audit.contains("403"), "the refused push is audited")
        // An admin re-binds the other token to this host: it may then read the cursor.
        let strangerID = String(stranger.split(separator: "_").dropFirst().first ?? "")
        #expect(try EndToEndTests.cli(["token", "rebind", strangerID, "--host", "web-1", "--data-dir", hubDir]).status == 0)
        #expect(Self.cursor(port, token: stranger).0 == 200)

        // The hub dies mid-push and comes back; the agent resumes where the hub says.
        let before = Self.cursor(port, token: token).1
        kill(hub.processIdentifier, SIGKILL)
        hub.waitUntilExit()
        usleep(2_000_000)
        hub = try ServerTests.start(["serve", "--data-dir", hubDir, "--listen", "127.0.0.1:\(port)"])
        #expect(try EndToEndTests.eventually(40) { Self.cursor(port, token: token).1 >= before + 8 }, "the agent did not resume")
        // The hub says how far behind the host is, on /api/v1/fleet and /metrics.
        let fleet = ((ServerTests.get(port, "/api/v1/fleet").1["data"] as? [String: Any])?["hosts"] as? [[String: Any]]) ?? []
        #expect(fleet.count == 1 && fleet.first?["host"] as? String == "web-1" && (fleet.first?["lag_seconds"] as? Double ?? 99) < 5, "\(fleet)")
        #expect(abs(fleet.first?["clock_offset_seconds"] as? Double ?? 99) < 1, "one clock on loopback: \(fleet)")
        // A newer protocol version is refused with the versions the hub speaks; the previous one is spoken.
        let previous = LoopbackHTTP.request(port: port, method: "GET", path: "/api/v1/sync/cursor?host=web-1&version=1", headers: ["Authorization": "Bearer \(token)"])
        #expect(previous?.status == 200, "\(previous?.body ?? "")")
        let newer = LoopbackHTTP.request(port: port, method: "GET", path: "/api/v1/sync/cursor?host=web-1&version=99", headers: ["Authorization": "Bearer \(token)"])
        #expect(newer?.status == 400 && newer?.body.contains("speaks versions 1–2") == true, "\(newer?.body ?? "")")
        #expect(LoopbackHTTP.get(port: port, "/metrics")?.body.contains("hosttwin_sync_lag_seconds{host=\"web-1\"}") == true)
        agent.interrupt()
        agent.waitUntilExit()
        let through = Self.cursor(port, token: token).1

        // Up to the hub's cursor, the hub holds exactly the agent's samples and state.
        let agentStore = try TwinStore.open(dataDir: agentDir, readOnly: true)
        let last = try #require(try agentStore.ticks(from: through, limit: 1).first)
        #expect(last.seq == through)
        let at = String(format: "%.3f", Double(last.time) / 1000)
        for q in ["count_over_time(node_load1[1h])", "sum(count_over_time({__name__=~\"node_.+\"}[1h]))", "count(count_over_time({__name__=~\".+\",__name__!~\"ALERTS.*\"}[1h]))"] {
            let mine = try EndToEndTests.cli(["query", q, "--at", at, "--data-dir", agentDir, "--json"])
            let theirs = LoopbackHTTP.get(port: port, "/api/v1/query?query=\(ServerTests.q(q))&time=\(at)")?.body ?? ""
            func value(_ s: String) -> String? {
                let j = ServerTests.json(s)
                return ((((j["data"] as? [String: Any]) ?? j)["result"] as? [[String: Any]])?.first?["value"] as? [Any])?.last as? String // API or CLI shape
            }
            #expect(value(mine.stdout) != nil && value(mine.stdout) == value(theirs), "\(q): agent \(value(mine.stdout) ?? mine.stdout.prefix(200).description), hub \(value(theirs) ?? theirs)")
        }
        let mine = try EndToEndTests.cli(["digest", "--data-dir", agentDir, "--until", at, "--json"]).stdout
        let theirs = try EndToEndTests.cli(["digest", "--data-dir", hubDir, "--host", "web-1", "--until", at, "--json"]).stdout
        #expect(mine.contains("digest") && theirs == mine, "the hub's digest \(theirs) differs from the agent's \(mine)")
        let ports = ServerTests.get(port, "/api/v1/twin/entities/listening_ports?at=\(at)").1
        let hubKeys = Set((((ports["data"] as? [String: Any])?["entities"] as? [[String: Any]]) ?? []).compactMap { ($0["key"] as? String)?.replacingOccurrences(of: "web-1/", with: "") })
        let agentKeys = Set(try agentStore.state(at: last.time, kinds: [.listeningPorts]).map(\.key))
        #expect(!agentKeys.isEmpty && hubKeys == agentKeys)
        // The CLI at the hub: every host's entities with a HOST column, or one host's with --host.
        let all = try EndToEndTests.cli(["ports", "--data-dir", hubDir, "--at", at])
        #expect(all.stdout.hasPrefix("HOST") && all.stdout.contains("web-1"), "\(all.stdout.prefix(300))")
        let one = try EndToEndTests.json(["ports", "--data-dir", hubDir, "--at", at, "--host", "web-1", "--json"]) as? [[String: Any]] ?? []
        #expect(one.count == agentKeys.count)
        #expect(try EndToEndTests.cli(["ports", "--data-dir", hubDir, "--at", at, "--host", "nope"]).stdout.hasPrefix("no listening ports"))
    }

    /// A hub that lost the tail of its log (a power cut: its cursor, in SQLite, is ahead of its samples) is
    /// mended by reconciliation: after the reconnect the agent finds the ranges that differ, the hub takes
    /// its cursor back, and the ticks are sent again until both digests are equal — versions not doubled.
    static let python3 = ["/usr/bin/python3", "/usr/local/bin/python3"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// A hub that lies (scripts/hostile-hub.py): `behind` waits of ±2^63 ms, acknowledgements up to tick
    /// 2^64 − 1, a claim to hold ticks the agent never had, an address map with an empty address and an
    /// overlong name. The agent keeps running (a wait of 2^63 ms overflowed its clock arithmetic and
    /// killed it) and stops cleanly.
    @Test(.enabled(if: python3 != nil, "needs python3 for the hostile hub")) func anAgentSurvivesAHubThatLies() throws {
        let dir = try temporaryDirectory("hosttwin-hostile-hub")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = try ServerTests.freePort()
        let hub = Process()
        hub.executableURL = URL(fileURLWithPath: Self.python3!)
        hub.arguments = [Fixtures.packageRoot + "/scripts/hostile-hub.py", String(port)]
        try hub.run()
        defer { kill(hub.processIdentifier, SIGKILL); hub.waitUntilExit() }
        func stats() -> [String: Int] { ServerTests.get(port, "/stats").1.compactMapValues { $0 as? Int } }
        #expect(try EndToEndTests.eventually(10) { LoopbackHTTP.get(port: port, "/stats")?.status == 200 })
        try "a-token".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        try "hash sensitive\n".write(toFile: dir + "/policy", atomically: true, encoding: .utf8)
        let agent = try ServerTests.start(["agent", "--data-dir", dir + "/agent", "--host-name", "web-1", "--interval", "500ms",
                                           "--push", "http://127.0.0.1:\(port)", "--token-file", dir + "/token", "--policy", dir + "/policy"])
        defer { if agent.isRunning { agent.terminate(); agent.waitUntilExit() } }
        #expect(try EndToEndTests.eventually(20) { (stats()["pushes"] ?? 0) >= 1 && (stats()["addresses"] ?? 0) >= 1 }, "\(stats())")
        usleep(3_000_000)
        #expect(agent.isRunning, "the agent died on the hub's answers (status \(agent.isRunning ? 0 : agent.terminationStatus))")
        agent.interrupt()
        agent.waitUntilExit()
        #expect(agent.terminationReason == .exit && agent.terminationStatus == 0)
    }

    @Test func reconciliationMendsAHubThatLostItsLogTail() throws {
        let dir = try temporaryDirectory("hosttwin-reconcile")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hubDir = dir + "/hub", agentDir = dir + "/agent"
        let token = try Self.token(hubDir, host: "web-1")
        try token.write(toFile: dir + "/agent.token", atomically: true, encoding: .utf8)
        let port = try ServerTests.freePort()
        func startHub() throws -> Process { try ServerTests.start(["serve", "--data-dir", hubDir, "--listen", "127.0.0.1:\(port)"]) }
        func startAgent() throws -> Process {
            try ServerTests.start(["agent", "--data-dir", agentDir, "--host-name", "web-1", "--interval", "500ms", "--reconcile-every", "2s",
                                   "--push", "http://127.0.0.1:\(port)", "--token-file", dir + "/agent.token"])
        }
        var hub = try startHub()
        defer { if hub.isRunning { hub.terminate(); hub.waitUntilExit() } }
        #expect(try EndToEndTests.eventually(20) { LoopbackHTTP.get(port: port, "/healthz")?.status == 200 })
        var agent = try startAgent()
        defer { if agent.isRunning { agent.terminate(); agent.waitUntilExit() } }
        #expect(try EndToEndTests.eventually(30) { Self.cursor(port, token: token).1 >= 16 }, "the hub never received 16 ticks")
        agent.interrupt()
        agent.waitUntilExit()
        usleep(500_000)
        kill(hub.processIdentifier, SIGKILL)
        hub.waitUntilExit()
        func digest(_ args: [String]) throws -> String { try EndToEndTests.cli(["digest", "--json"] + args).stdout.filter { !$0.isWhitespace } }
        let agentDigest = try digest(["--data-dir", agentDir])
        // The power cut: the hub's newest log segment loses its last 40 %.
        let segment = try #require(try FileManager.default.contentsOfDirectory(atPath: hubDir + "/wal").filter { $0.hasSuffix(".log") }.sorted().last)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: hubDir + "/wal/" + segment))
        let size = try handle.seekToEnd()
        try handle.truncate(atOffset: size * 6 / 10)
        try handle.close()
        let damaged = try digest(["--data-dir", hubDir, "--host", "web-1"])
        #expect(damaged != agentDigest, "the cut lost nothing: \(damaged)")

        hub = try startHub()
        #expect(try EndToEndTests.eventually(20) { LoopbackHTTP.get(port: port, "/healthz")?.status == 200 })
        let through = Self.cursor(port, token: token).1
        agent = try startAgent()
        #expect(try EndToEndTests.eventually(40) { Self.cursor(port, token: token).1 >= through + 4 }, "the agent did not resume")
        agent.interrupt()
        agent.waitUntilExit()
        let agentStore = try TwinStore.open(dataDir: agentDir, readOnly: true)
        let last = try agentStore.lastTickSeq()
        #expect(try EndToEndTests.eventually(20) { Self.cursor(port, token: token).1 == last })
        let mended = try digest(["--data-dir", agentDir])
        #expect(try digest(["--data-dir", hubDir, "--host", "web-1"]) == mended, "the hub still differs from the agent")
        #expect(LoopbackHTTP.get(port: port, "/metrics")?.body.contains("hosttwin_sync_rewinds_total{host=\"web-1\"} 1") == true)
    }

    static func token(_ dir: String, role: String) throws -> String {
        let r = try EndToEndTests.cli(["token", "create", "--role", role, "--data-dir", dir])
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.split(separator: "\n").last.map(String.init) ?? ""
    }

    /// Each host's last applied tick at a hub or replica (`/api/v1/fleet`).
    static func applied(_ port: Int) -> [String: UInt64] {
        let hosts = ((ServerTests.get(port, "/api/v1/fleet").1["data"] as? [String: Any])?["hosts"] as? [[String: Any]]) ?? []
        var out: [String: UInt64] = [:]
        for h in hosts { if let name = h["host"] as? String { out[name] = (h["applied_through"] as? NSNumber)?.uint64Value ?? 0 } }
        return out
    }

    /// Tiers: an agent pushes to a datacenter hub, which relays to a global hub (killed -9 and restarted
    /// mid-stream), which a replica follows. Every tier ends with exactly the agent's ticks; the replica
    /// accepts no pushes.
    @Test func aHubRelaysUpstreamAndAReplicaFollows() throws {
        let dir = try temporaryDirectory("hosttwin-tiers")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (agentDir, dcDir, globalDir, observerDir) = (dir + "/agent", dir + "/dc", dir + "/global", dir + "/observer")
        try Self.token(dcDir, host: "web-1").write(toFile: dir + "/agent.token", atomically: true, encoding: .utf8)
        try Self.token(globalDir, role: "relay").write(toFile: dir + "/dc.token", atomically: true, encoding: .utf8)
        try Self.token(globalDir, role: "relay").write(toFile: dir + "/observer.token", atomically: true, encoding: .utf8)
        let observerAdmin = try Self.token(observerDir, role: "admin")
        let readerOfGlobal = try Self.token(globalDir, role: "reader")
        let (dcPort, globalPort, observerPort) = (try ServerTests.freePort(), try ServerTests.freePort(), try ServerTests.freePort())
        func startGlobal() throws -> Process { try ServerTests.start(["serve", "--data-dir", globalDir, "--listen", "127.0.0.1:\(globalPort)"]) }
        var global = try startGlobal()
        let dc = try ServerTests.start(["serve", "--data-dir", dcDir, "--listen", "127.0.0.1:\(dcPort)", "--datacenter", "dc-a",
                                        "--push", "http://127.0.0.1:\(globalPort)", "--token-file", dir + "/dc.token"])
        let observer = try ServerTests.start(["serve", "--data-dir", observerDir, "--listen", "127.0.0.1:\(observerPort)",
                                              "--follow", "http://127.0.0.1:\(globalPort)", "--token-file", dir + "/observer.token"])
        let agent = try ServerTests.start(["agent", "--data-dir", agentDir, "--host-name", "web-1", "--interval", "500ms",
                                           "--push", "http://127.0.0.1:\(dcPort)", "--token-file", dir + "/agent.token"])
        defer {
            for p in [agent, dc, observer, global] where p.isRunning { p.terminate(); p.waitUntilExit() }
        }
        #expect(try EndToEndTests.eventually(40) { (Self.applied(globalPort)["web-1"] ?? 0) >= 6 }, "the global hub never received 6 ticks")
        // The host's datacenter: the hub its agent pushes to names it, and so does the relay upstream.
        for port in [dcPort, globalPort] {
            let hosts = ((ServerTests.get(port, "/api/v1/fleet").1["data"] as? [String: Any])?["hosts"] as? [[String: Any]]) ?? []
            #expect(hosts.first?["datacenter"] as? String == "dc-a", "\(port): \(hosts)")
            #expect(port == globalPort || hosts.first?["backlog_ticks"] as? NSNumber != nil, "the agent's hub knows its backlog: \(hosts)")
        }
        // `host=` confines a query to one host's series (a hub's dashboard host page).
        func count(_ port: Int, _ host: String) -> Int {
            let r = ServerTests.get(port, "/api/v1/query?query=\(ServerTests.q("count(node_load1)"))&host=\(host)").1
            return (((r["data"] as? [String: Any])?["result"] as? [[String: Any]])?.first?["value"] as? [Any])?.last.flatMap { Int($0 as? String ?? "") } ?? 0
        }
        #expect(count(globalPort, "web-1") == 1 && count(globalPort, "db-9") == 0)
        #expect(try EndToEndTests.eventually(20) { (Self.applied(observerPort)["web-1"] ?? 0) >= 6 }, "the replica never received 6 ticks")

        // A relay token may push but not read; a reader may not follow; the replica refuses pushes.
        #expect(AccessTests.status(globalPort, "/api/v1/fleet", token: try String(contentsOfFile: dir + "/dc.token", encoding: .utf8)) == 403)
        #expect(AccessTests.status(globalPort, "/api/v1/sync/follow", token: readerOfGlobal, method: "POST") == 403)
        let pushed = LoopbackHTTP.request(port: observerPort, method: "POST", path: "/api/v1/sync/push?host=web-1", headers: ["Authorization": "Bearer \(observerAdmin)"], body: [0, 0, 0, 0])
        #expect(pushed?.status == 503, "\(pushed?.body ?? "")")

        // The global hub dies mid-stream and comes back: the datacenter hub relays from its cursor.
        let before = Self.applied(globalPort)["web-1"] ?? 0
        kill(global.processIdentifier, SIGKILL)
        global.waitUntilExit()
        usleep(3_000_000)
        global = try startGlobal()
        #expect(try EndToEndTests.eventually(40) { (Self.applied(globalPort)["web-1"] ?? 0) >= before + 10 }, "the relay did not resume")

        // The agent stops; every tier reaches its last tick and holds exactly its samples.
        agent.interrupt()
        agent.waitUntilExit()
        let agentStore = try TwinStore.open(dataDir: agentDir, readOnly: true)
        let lastSeq = try #require(try agentStore.ticks(from: 1, limit: 1_000_000).last?.seq)
        #expect(try EndToEndTests.eventually(40) {
            [dcPort, globalPort, observerPort].allSatisfy { Self.applied($0)["web-1"] == lastSeq }
        }, "tiers at \([dcPort, globalPort, observerPort].map { Self.applied($0)["web-1"] ?? 0 }), the agent at \(lastSeq)")
        try Self.expectTwin(of: agentStore, agentDir: agentDir, through: lastSeq, at: [dcPort, globalPort, observerPort], dirs: [dcDir, globalDir, observerDir])
    }

    /// Two lanes: an agent comes back with a backlog to hubs that take at most 4 backlog ticks a second
    /// (`serve --catch-up-rate 4`). While the in-order lane drains, the newest ticks are queryable at the
    /// datacenter hub (the agent's live lane) and at the global hub (the relay forwards them) within a
    /// couple of seconds; afterwards every tier holds exactly the agent's ticks, none twice.
    @Test func theLiveLaneKeepsThePresentWhileABacklogDrains() throws {
        let dir = try temporaryDirectory("hosttwin-lanes")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (agentDir, dcDir, globalDir) = (dir + "/agent", dir + "/dc", dir + "/global")
        try Self.token(dcDir, host: "web-1").write(toFile: dir + "/agent.token", atomically: true, encoding: .utf8)
        try Self.token(globalDir, role: "relay").write(toFile: dir + "/dc.token", atomically: true, encoding: .utf8)
        let (dcPort, globalPort) = (try ServerTests.freePort(), try ServerTests.freePort())
        // The backlog: 30 ticks observed while no hub listened.
        let offline = try EndToEndTests.cli(["agent", "--data-dir", agentDir, "--host-name", "web-1", "--interval", "100ms", "--ticks", "30",
                                             "--push", "http://127.0.0.1:\(dcPort)", "--token-file", dir + "/agent.token", "--log-level", "error"])
        #expect(offline.status == 0, "\(offline.stderr)")
        let global = try ServerTests.start(["serve", "--data-dir", globalDir, "--listen", "127.0.0.1:\(globalPort)", "--catch-up-rate", "4"])
        let dc = try ServerTests.start(["serve", "--data-dir", dcDir, "--listen", "127.0.0.1:\(dcPort)", "--catch-up-rate", "4",
                                        "--push", "http://127.0.0.1:\(globalPort)", "--token-file", dir + "/dc.token"])
        #expect(try EndToEndTests.eventually(20) { LoopbackHTTP.get(port: dcPort, "/healthz")?.status == 200 && LoopbackHTTP.get(port: globalPort, "/healthz")?.status == 200 })
        func startAgent() throws -> Process {
            try ServerTests.start(["agent", "--data-dir", agentDir, "--host-name", "web-1", "--interval", "500ms",
                                   "--push", "http://127.0.0.1:\(dcPort)", "--token-file", dir + "/agent.token"])
        }
        var agent = try startAgent()
        defer { for p in [agent, dc, global] where p.isRunning { p.terminate(); p.waitUntilExit() } }
        let agentStore = try TwinStore.open(dataDir: agentDir, readOnly: true)
        /// The newest sample time of node_load1 at a hub (ms), from PromQL.
        func newest(_ port: Int) -> Int64? {
            let r = ServerTests.get(port, "/api/v1/query?query=\(ServerTests.q("timestamp(node_load1)"))").1
            let v = (((r["data"] as? [String: Any])?["result"] as? [[String: Any]])?.first?["value"] as? [Any])?.last as? String
            return v.flatMap(Double.init).map { Int64($0 * 1000) }
        }
        /// Whether the hub at `port` answers with the agent's present while its in-order copy is well behind.
        func presentAheadOfOrder(_ port: Int) throws -> Bool {
            let through = Self.applied(port)["web-1"] ?? 0
            guard let seen = newest(port) else { return false }
            let ticks = try agentStore.ticks(from: 1, limit: 1_000_000)
            guard let last = ticks.last, last.seq >= through + 8 else { return false }
            let appliedTime = through > 0 ? ticks[Int(through) - 1].time : 0
            return seen >= last.time - 2_000 && seen > appliedTime + 3_000
        }
        #expect(try EndToEndTests.eventually(40) { try presentAheadOfOrder(dcPort) }, "the datacenter hub never showed the present ahead of its backlog")
        #expect(try EndToEndTests.eventually(40) { try presentAheadOfOrder(globalPort) }, "the global hub never showed the present ahead of its backlog")

        // Stopped while the hubs still drain what it sent (what was in flight when it closed may be lost:
        // it is sent again), then back: every tier ends with exactly the agent's ticks.
        agent.interrupt()
        agent.waitUntilExit()
        let lastSeq = try #require(try agentStore.ticks(from: 1, limit: 1_000_000).last?.seq)
        agent = try startAgent()
        #expect(try EndToEndTests.eventually(90) { [dcPort, globalPort].allSatisfy { (Self.applied($0)["web-1"] ?? 0) >= lastSeq } },
                "tiers at \([dcPort, globalPort].map { Self.applied($0)["web-1"] ?? 0 }), the agent at \(lastSeq)")
        try Self.expectTwin(of: agentStore, agentDir: agentDir, through: lastSeq, at: [dcPort, globalPort], dirs: [dcDir, globalDir])
        let metrics = LoopbackHTTP.get(port: dcPort, "/metrics")?.body ?? ""
        #expect(metrics.contains("hosttwin_sync_freshness_seconds_count"), "freshness is measured")
    }

    /// A reader token confined to one datacenter, at the global hub: every query path answers for that
    /// datacenter's hosts only — PromQL (also with an explicit `host`), series and label values, entities,
    /// events, SQL, the graph, the fleet list — and routes that cannot be confined refuse it.
    @Test func aTokenConfinedToADatacenterSeesOnlyItsHosts() throws {
        let dir = try temporaryDirectory("hosttwin-scope")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let globalDir = dir + "/global"
        try Self.token(dir + "/dc-a", host: "web-1").write(toFile: dir + "/a.token", atomically: true, encoding: .utf8)
        try Self.token(dir + "/dc-b", host: "db-2").write(toFile: dir + "/b.token", atomically: true, encoding: .utf8)
        try Self.token(globalDir, role: "relay").write(toFile: dir + "/relay.token", atomically: true, encoding: .utf8)
        let created = try EndToEndTests.cli(["token", "create", "--role", "reader", "--datacenter", "dc-b", "--data-dir", globalDir])
        #expect(created.status == 0 && created.stdout.contains("datacenter dc-b only"), "\(created.stderr)")
        let partner = created.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let everyone = try Self.token(globalDir, role: "reader")
        #expect(try EndToEndTests.cli(["token", "create", "--role", "agent", "--host", "x", "--datacenter", "dc-b", "--data-dir", globalDir]).status != 0)
        let (aPort, bPort, globalPort) = (try ServerTests.freePort(), try ServerTests.freePort(), try ServerTests.freePort())
        var processes = [try ServerTests.start(["serve", "--data-dir", globalDir, "--listen", "127.0.0.1:\(globalPort)", "--auth", "required"])]
        defer { for p in processes where p.isRunning { p.terminate(); p.waitUntilExit() } }
        for (name, port, host) in [("dc-a", aPort, "web-1"), ("dc-b", bPort, "db-2")] {
            processes.append(try ServerTests.start(["serve", "--data-dir", dir + "/" + name, "--listen", "127.0.0.1:\(port)", "--datacenter", name,
                                                    "--push", "http://127.0.0.1:\(globalPort)", "--token-file", dir + "/relay.token"]))
            processes.append(try ServerTests.start(["agent", "--data-dir", dir + "/agent-" + host, "--host-name", host, "--interval", "500ms",
                                                    "--push", "http://127.0.0.1:\(port)", "--token-file", dir + (host == "web-1" ? "/a.token" : "/b.token")]))
        }
        func get(_ path: String, _ token: String) -> (Int, [String: Any]) {
            guard let r = LoopbackHTTP.request(port: globalPort, method: "GET", path: path, headers: ["Authorization": "Bearer \(token)"], timeout: 10) else { return (0, [:]) }
            return (r.status, ServerTests.json(r.body))
        }
        func hosts(_ path: String, _ token: String) -> Set<String> {
            let data = get(path, token).1["data"]
            if let result = (data as? [String: Any])?["result"] as? [[String: Any]] { return Set(result.compactMap { ($0["metric"] as? [String: Any])?["host"] as? String }) }
            if let values = data as? [String] { return Set(values) }
            if let series = data as? [[String: Any]] { return Set(series.compactMap { $0["host"] as? String }) }
            return []
        }
        let byHost = "/api/v1/query?query=\(ServerTests.q("count by (host) (node_load1)"))"
        func graphHosts(_ token: String) -> Set<String> {
            Set(((get("/api/v1/twin/graph", token).1["data"] as? [String: Any])?["nodes"] as? [[String: Any]] ?? []).compactMap { $0["host"] as? String })
        }
        func sqlHosts(_ token: String) -> [String]? {
            (get("/api/v1/twin/sql?query=\(ServerTests.q("select distinct host from processes order by host"))", token).1["rows"] as? [[Any]])?.compactMap { $0.first as? String }
        }
        // Samples can show first (the live lane carries samples only); the state follows in order.
        #expect(try EndToEndTests.eventually(40) { hosts(byHost, everyone) == ["web-1", "db-2"] && sqlHosts(everyone) == ["db-2", "web-1"] && graphHosts(everyone) == ["web-1", "db-2"] },
                "\(hosts(byHost, everyone)) \(sqlHosts(everyone) ?? []) \(graphHosts(everyone))")
        #expect(hosts(byHost, partner) == ["db-2"])
        #expect(hosts(byHost + "&host=web-1", partner).isEmpty, "an explicit host outside the scope finds nothing")
        #expect(hosts("/api/v1/label/host/values", partner) == ["db-2"])
        #expect(hosts("/api/v1/series?match[]=node_load1", partner) == ["db-2"])
        let entities = ((get("/api/v1/twin/entities/processes", partner).1["data"] as? [String: Any])?["entities"] as? [[String: Any]]) ?? []
        #expect(!entities.isEmpty && entities.allSatisfy { ($0["attributes"] as? [String: Any])?["host"] as? String == "db-2" })
        let events = (get("/api/v1/twin/events?from=-10m", partner).1["data"] as? [[String: Any]]) ?? []
        #expect(!events.isEmpty && events.allSatisfy { ($0["key"] as? String)?.hasPrefix("db-2/") == true }, "\(events.prefix(3))")
        #expect(sqlHosts(partner) == ["db-2"])
        let fleet = ((get("/api/v1/fleet", partner).1["data"] as? [String: Any])?["hosts"] as? [[String: Any]]) ?? []
        #expect(fleet.compactMap { $0["host"] as? String } == ["db-2"])
        #expect(graphHosts(partner) == ["db-2"], "\(graphHosts(partner))")
        for path in ["/metrics", "/api/v1/twin/live", "/api/v1/twin/forecast?expr=node_load1", "/api/v1/twin/anomalies"] {
            #expect(get(path, partner).0 == 403, "\(path)")
        }
        #expect(get("/metrics", everyone).0 == 200)
    }

    /// A datacenter hub relaying under a destination policy (`--forward-policy`, `drop sensitive`): the
    /// command lines it holds never reach the global hub or the observer following it — neither their
    /// stores (read with their keys) nor their files — while the processes themselves do.
    /// An observer whose token's policy says `resolution 1m` holds every tick and state change of the host
    /// but samples at one point a minute: a counter's value at the last tick of the minute before, stamped
    /// at the first tick of the next. Waits for a minute boundary (up to ~70 s).
    @Test func anObserverOfMinuteRollupsGetsAPointAMinute() throws {
        let dir = try temporaryDirectory("hosttwin-rollups-observer")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (agentDir, hubDir, observerDir) = (dir + "/agent", dir + "/hub", dir + "/observer")
        try Self.token(hubDir, host: "web-1").write(toFile: dir + "/agent.token", atomically: true, encoding: .utf8)
        try "resolution 1m\n".write(toFile: dir + "/minute.policy", atomically: true, encoding: .utf8)
        let observerToken = try EndToEndTests.cli(["token", "create", "--role", "relay", "--policy", dir + "/minute.policy", "--data-dir", hubDir])
        try (observerToken.stdout.split(separator: "\n").last.map(String.init) ?? "").write(toFile: dir + "/observer.token", atomically: true, encoding: .utf8)
        let (hubPort, observerPort) = (try ServerTests.freePort(), try ServerTests.freePort())
        let hub = try ServerTests.start(["serve", "--data-dir", hubDir, "--listen", "127.0.0.1:\(hubPort)"])
        let observer = try ServerTests.start(["serve", "--data-dir", observerDir, "--listen", "127.0.0.1:\(observerPort)",
                                              "--follow", "http://127.0.0.1:\(hubPort)", "--token-file", dir + "/observer.token"])
        let agent = try ServerTests.start(["agent", "--data-dir", agentDir, "--host-name", "web-1", "--interval", "1s",
                                           "--push", "http://127.0.0.1:\(hubPort)", "--token-file", dir + "/agent.token"])
        defer { for p in [agent, observer, hub] where p.isRunning { p.terminate(); p.waitUntilExit() } }
        let key = SeriesKey("node_cpu_seconds_total", Labels(["cpu": "0", "host": "web-1", "mode": "idle"]))
        func points(_ d: String) -> [(Int64, Double)] { ((try? TwinStore.open(dataDir: d, readOnly: true)).flatMap { try? $0.samples(key, from: 0, to: .max) } ?? nil) ?? [] }
        #expect(try EndToEndTests.eventually(100) { points(observerDir).count >= 1 }, "the observer never got a minute's point")
        agent.interrupt()
        agent.waitUntilExit()
        let last = try TwinStore.open(dataDir: agentDir, readOnly: true).lastTickSeq()
        #expect(try EndToEndTests.eventually(30) { Self.applied(hubPort)["web-1"] == last && Self.applied(observerPort)["web-1"] == last },
                "every tick reaches the observer, samples or not")
        let raw = points(hubDir), minute = points(observerDir)
        #expect(!minute.isEmpty && minute.count <= raw.count / 60 + 1, "\(raw.count) raw points, \(minute.count) at the observer")
        for (t, v) in minute {
            // Stamped at the first tick of its minute, holding the counter's last value of the minute before.
            let before = raw.last { $0.0 < t / 60_000 * 60_000 }
            #expect(raw.contains { $0.0 == t } && before?.1 == v, "point at \(t): \(v), the hub's last of the minute before: \(String(describing: before))")
        }
    }

    @Test func sensitiveValuesStayAtTheDatacenterHub() throws {
        let dir = try temporaryDirectory("hosttwin-policy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (agentDir, dcDir, globalDir, observerDir) = (dir + "/agent", dir + "/dc", dir + "/global", dir + "/observer")
        try Self.token(dcDir, host: "web-1").write(toFile: dir + "/agent.token", atomically: true, encoding: .utf8)
        try Self.token(globalDir, role: "relay").write(toFile: dir + "/dc.token", atomically: true, encoding: .utf8)
        try Self.token(globalDir, role: "relay").write(toFile: dir + "/observer.token", atomically: true, encoding: .utf8)
        try "drop sensitive\n".write(toFile: dir + "/forward.policy", atomically: true, encoding: .utf8)
        // A replica of the datacenter hub itself, whose token carries the same policy: what it may be sent.
        let partnerDir = dir + "/partner"
        let partnerToken = try EndToEndTests.cli(["token", "create", "--role", "relay", "--policy", dir + "/forward.policy", "--data-dir", dcDir])
        #expect(partnerToken.status == 0 && partnerToken.stdout.contains("with its data policy"), "\(partnerToken.stderr)")
        try (partnerToken.stdout.split(separator: "\n").last.map(String.init) ?? "").write(toFile: dir + "/partner.token", atomically: true, encoding: .utf8)
        #expect(try EndToEndTests.cli(["token", "create", "--role", "reader", "--policy", dir + "/forward.policy", "--data-dir", dcDir]).status != 0)
        // A process whose command line is recognisable.
        let marker = "hosttwin-marker-\(UInt32.random(in: 0...UInt32.max))"
        let sh = Process()
        sh.executableURL = URL(fileURLWithPath: "/bin/sh")
        sh.arguments = ["-c", "read line; : \(marker)"]
        sh.standardInput = Pipe() // never written: the shell waits on it until it is killed
        try sh.run()
        let (dcPort, globalPort, observerPort) = (try ServerTests.freePort(), try ServerTests.freePort(), try ServerTests.freePort())
        let global = try ServerTests.start(["serve", "--data-dir", globalDir, "--listen", "127.0.0.1:\(globalPort)"])
        let dc = try ServerTests.start(["serve", "--data-dir", dcDir, "--listen", "127.0.0.1:\(dcPort)", "--forward-policy", dir + "/forward.policy",
                                        "--push", "http://127.0.0.1:\(globalPort)", "--token-file", dir + "/dc.token"])
        let observer = try ServerTests.start(["serve", "--data-dir", observerDir, "--listen", "127.0.0.1:\(observerPort)",
                                              "--follow", "http://127.0.0.1:\(globalPort)", "--token-file", dir + "/observer.token"])
        let agent = try ServerTests.start(["agent", "--data-dir", agentDir, "--host-name", "web-1", "--interval", "500ms",
                                           "--push", "http://127.0.0.1:\(dcPort)", "--token-file", dir + "/agent.token"])
        let partnerPort = try ServerTests.freePort()
        let partner = try ServerTests.start(["serve", "--data-dir", partnerDir, "--listen", "127.0.0.1:\(partnerPort)",
                                             "--follow", "http://127.0.0.1:\(dcPort)", "--token-file", dir + "/partner.token"])
        defer {
            for p in [agent, dc, observer, global, partner] where p.isRunning { p.terminate(); p.waitUntilExit() }
            kill(sh.processIdentifier, SIGKILL) // SIGTERM may be ignored, inherited from the test runner
            sh.waitUntilExit()
        }
        #expect(try EndToEndTests.eventually(40) { (Self.applied(observerPort)["web-1"] ?? 0) >= 6 }, "the observer never received 6 ticks")
        agent.interrupt()
        agent.waitUntilExit()
        let last = try TwinStore.open(dataDir: agentDir, readOnly: true).lastTickSeq()
        #expect(try EndToEndTests.eventually(40) { [dcPort, globalPort, observerPort, partnerPort].allSatisfy { Self.applied($0)["web-1"] == last } })
        func process(_ dataDir: String) throws -> [String: Any]? {
            let all = try EndToEndTests.json(["ps", "--data-dir", dataDir, "--host", "web-1", "--json"]) as? [[String: Any]] ?? []
            return all.first { ($0["pid"] as? NSNumber)?.int32Value == sh.processIdentifier }
        }
        let atDC = try #require(try process(dcDir), "the datacenter hub lacks the process")
        #expect((atDC["command"] as? String)?.contains(marker) == true, "the datacenter hub keeps the command line: \(atDC)")
        for (name, d) in [("global hub", globalDir), ("observer", observerDir), ("replica with a policy token", partnerDir)] {
            let there = try #require(try process(d), "the \(name) lacks the process")
            #expect(there["command"] == nil && there["user"] == nil, "the \(name) holds a sensitive value: \(there)")
            let files = (FileManager.default.enumerator(atPath: d)?.allObjects as? [String] ?? []).filter { path in
                (try? Data(contentsOf: URL(fileURLWithPath: d + "/" + path)))?.range(of: Data(marker.utf8)) != nil
            }
            #expect(files.isEmpty, "the \(name)'s files hold the marker: \(files)")
        }
    }

    /// The servers on `ports` hold exactly the agent's samples (counted as of its last tick) and its
    /// listening ports; the stores in `dirs` hold each of its versions once.
    static func expectTwin(of agentStore: TwinStore, agentDir: String, through lastSeq: UInt64, at ports: [Int], dirs: [String]) throws {
        let last = try #require(try agentStore.ticks(from: lastSeq, limit: 1).first)
        let at = String(format: "%.3f", Double(last.time) / 1000)
        for q in ["sum(count_over_time({__name__=~\"node_.+\"}[1h]))", "count(count_over_time({__name__=~\".+\",__name__!~\"ALERTS.*\"}[1h]))"] {
            let mine = try EndToEndTests.cli(["query", q, "--at", at, "--data-dir", agentDir, "--json"])
            let expected = (((ServerTests.json(mine.stdout)["result"] as? [[String: Any]])?.first?["value"] as? [Any])?.last as? String)
            #expect(expected != nil, "\(mine.stdout.prefix(300))")
            for port in ports {
                let body = LoopbackHTTP.get(port: port, "/api/v1/query?query=\(ServerTests.q(q))&time=\(at)")?.body ?? ""
                let got = ((((ServerTests.json(body)["data"] as? [String: Any])?["result"] as? [[String: Any]])?.first?["value"] as? [Any])?.last as? String)
                #expect(got == expected, "\(q) at port \(port): \(got ?? body), agent \(expected ?? "-")")
            }
        }
        let agentKeys = Set(try agentStore.state(at: last.time, kinds: [.listeningPorts]).map { "web-1/" + $0.key })
        for port in ports {
            let ports = ServerTests.get(port, "/api/v1/twin/entities/listening_ports?at=\(at)").1
            let keys = Set((((ports["data"] as? [String: Any])?["entities"] as? [[String: Any]]) ?? []).compactMap { $0["key"] as? String })
            #expect(!agentKeys.isEmpty && keys == agentKeys, "port \(port)")
        }
        // Every sample and version the agent holds, once (`hosttwin digest` on each store).
        let mine = try EndToEndTests.cli(["digest", "--data-dir", agentDir, "--until", at, "--json"]).stdout
        #expect(mine.contains("\"digest\""), "\(mine)")
        for dir in dirs {
            let theirs = try EndToEndTests.cli(["digest", "--data-dir", dir, "--host", "web-1", "--until", at, "--json"]).stdout
            #expect(theirs == mine, "\(dir): \(theirs), the agent \(mine)")
        }
    }

    /// A host moves from one datacenter's hub to another's; both relay to the global hub, which holds
    /// each of its ticks once.
    @Test func aHostMovesBetweenDatacenters() throws {
        let dir = try temporaryDirectory("hosttwin-move")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (agentDir, globalDir) = (dir + "/agent", dir + "/global")
        try Self.token(dir + "/dc1", host: "web-1").write(toFile: dir + "/agent1.token", atomically: true, encoding: .utf8)
        try Self.token(dir + "/dc2", host: "web-1").write(toFile: dir + "/agent2.token", atomically: true, encoding: .utf8)
        try Self.token(globalDir, role: "relay").write(toFile: dir + "/relay.token", atomically: true, encoding: .utf8)
        let (dc1Port, dc2Port, globalPort) = (try ServerTests.freePort(), try ServerTests.freePort(), try ServerTests.freePort())
        var running: [Process] = []
        defer { for p in running where p.isRunning { p.terminate(); p.waitUntilExit() } }
        running.append(try ServerTests.start(["serve", "--data-dir", globalDir, "--listen", "127.0.0.1:\(globalPort)"]))
        for (name, port) in [("dc1", dc1Port), ("dc2", dc2Port)] {
            running.append(try ServerTests.start(["serve", "--data-dir", dir + "/" + name, "--listen", "127.0.0.1:\(port)",
                                                  "--push", "http://127.0.0.1:\(globalPort)", "--token-file", dir + "/relay.token"]))
        }
        func agent(_ port: Int, _ token: String) throws -> Process {
            try ServerTests.start(["agent", "--data-dir", agentDir, "--host-name", "web-1", "--interval", "500ms",
                                   "--push", "http://127.0.0.1:\(port)", "--token-file", dir + "/" + token])
        }
        var a = try agent(dc1Port, "agent1.token")
        #expect(try EndToEndTests.eventually(40) { (Self.applied(globalPort)["web-1"] ?? 0) >= 8 })
        a.interrupt()
        a.waitUntilExit()
        let moved = Self.applied(globalPort)["web-1"] ?? 0
        a = try agent(dc2Port, "agent2.token")
        running.append(a)
        #expect(try EndToEndTests.eventually(40) { (Self.applied(globalPort)["web-1"] ?? 0) >= moved + 8 }, "the global hub did not follow the move")
        a.interrupt()
        a.waitUntilExit()
        let agentStore = try TwinStore.open(dataDir: agentDir, readOnly: true)
        let lastSeq = try #require(try agentStore.ticks(from: 1, limit: 1_000_000).last?.seq)
        #expect(try EndToEndTests.eventually(40) { [dc2Port, globalPort].allSatisfy { Self.applied($0)["web-1"] == lastSeq } },
                "dc2 and the global hub at \([dc2Port, globalPort].map { Self.applied($0)["web-1"] ?? 0 }), the agent at \(lastSeq)")
        // dc2 took the host's whole history from the agent's store; the global hub holds each tick once.
        try Self.expectTwin(of: agentStore, agentDir: agentDir, through: lastSeq, at: [dc2Port, globalPort], dirs: [dir + "/dc2", globalDir])
    }
}
