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
        // A newer protocol version is refused with the version the hub speaks.
        let newer = LoopbackHTTP.request(port: port, method: "GET", path: "/api/v1/sync/cursor?host=web-1&version=99", headers: ["Authorization": "Bearer \(token)"])
        #expect(newer?.status == 400 && newer?.body.contains("speaks version 1") == true, "\(newer?.body ?? "")")
        #expect(LoopbackHTTP.get(port: port, "/metrics")?.body.contains("hosttwin_sync_lag_seconds{host=\"web-1\"}") == true)
        agent.interrupt()
        agent.waitUntilExit()
        let through = Self.cursor(port, token: token).1

        // Up to the hub's cursor, the hub holds exactly the agent's samples and state.
        let agentStore = try TwinStore.open(dataDir: agentDir, readOnly: true)
        let last = try #require(try agentStore.ticks(from: through, limit: 1).first)
        #expect(last.seq == through)
        let at = String(format: "%.3f", Double(last.time) / 1000)
        for q in ["count_over_time(node_load1[1h])", "sum(count_over_time({__name__=~\"node_.+\"}[1h]))", "count(count_over_time({__name__=~\".+\"}[1h]))"] {
            let mine = try EndToEndTests.cli(["query", q, "--at", at, "--data-dir", agentDir, "--json"])
            let theirs = LoopbackHTTP.get(port: port, "/api/v1/query?query=\(ServerTests.q(q))&time=\(at)")?.body ?? ""
            func value(_ s: String) -> String? {
                let j = ServerTests.json(s)
                return ((((j["data"] as? [String: Any]) ?? j)["result"] as? [[String: Any]])?.first?["value"] as? [Any])?.last as? String // API or CLI shape
            }
            #expect(value(mine.stdout) != nil && value(mine.stdout) == value(theirs), "\(q): agent \(value(mine.stdout) ?? mine.stdout.prefix(200).description), hub \(value(theirs) ?? theirs)")
        }
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
}
