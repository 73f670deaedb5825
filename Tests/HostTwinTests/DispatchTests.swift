import Foundation
import Testing
import TwinCore
@testable import TwinRules
@testable import TwinServer
import TwinStorage

/// Actions a hub dispatches to the agent of a host (docs/RULES.md "Actions at a hub").
@Suite(.serialized) struct DispatchTests {
    /// The queue in the store: runs handed out once, to their host's agent only, reported once; a run
    /// nobody took within the expiry is expired rather than handed out late.
    @Test func runsAreHandedOutOnceToTheirHost() async throws {
        let dir = try temporaryDirectory("hosttwin-dispatch")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TwinStore.open(dataDir: dir)
        let queue = AgentActionQueue(store: store, expireAfter: 60_000)
        func run(_ host: String, _ action: String, at t: Int64 = TwinTime.nowMillis()) -> ActionRunRecord {
            var r = ActionRunRecord(time: t, action: action, alert: #"{alertname="A",host="\#(host)"}"#, argv: [], dryRun: false, status: "queued", millis: 0, output: "")
            r.agent = host
            r.value = 0.5
            return r
        }
        let first = try queue.dispatch(run("web1", "fix"))
        try queue.dispatch(run("web1", "clean"))
        try queue.dispatch(run("db2", "fix"))
        let stale = try queue.dispatch(run("web1", "old", at: TwinTime.nowMillis() - 120_000))
        let taken = try await queue.take(host: "web1", wait: .zero)
        #expect(taken.map(\.action) == ["fix", "clean"] && taken.allSatisfy { $0.status == "sent to agent web1" && $0.value == 0.5 }, "\(taken)")
        #expect(try await queue.take(host: "web1", wait: .zero).isEmpty, "each run is handed out once")
        #expect(try store.actionRun(id: stale)?.status.hasPrefix("expired") == true)
        // A report names the host the run was for, and counts once.
        let report = ActionRunReport(status: "exit 0", millis: 12, output: "done", argv: ["/bin/true"], dryRun: false)
        #expect(try !queue.report(id: first, host: "db2", report), "another host's run")
        #expect(try queue.report(id: first, host: "web1", report))
        #expect(try !queue.report(id: first, host: "web1", report), "reported already")
        let stored = try #require(try store.actionRun(id: first))
        #expect(stored.status == "agent web1: exit 0" && stored.millis == 12 && stored.argv == ["/bin/true"] && stored.reportedAt != nil)
        #expect(try await queue.take(host: "db2", wait: .zero).map(\.action) == ["fix"])
        // A waiting poll wakes when a run is queued for its host, and not for another host's. (Woken, not timed
        // out: well within the wait, which is long because a loaded test run can starve the task pool for
        // tens of seconds.)
        async let waited = queue.take(host: "db2", wait: .seconds(120))
        try await Task.sleep(for: .milliseconds(300))
        let started = ContinuousClock.now
        try queue.dispatch(run("web1", "other"))
        try queue.dispatch(run("db2", "late"))
        let got = try await waited
        let took = ContinuousClock.now - started
        #expect(got.map(\.action) == ["late"] && took < .seconds(60), "\(got) after \(took)")
    }

    @Test func dispatchConfigurationsAreChecked() throws {
        func errors(_ text: String) -> String {
            do { _ = try AlertingConfig.parse(text, source: "a.yml"); return "" } catch { return "\(error)" }
        }
        #expect(errors("actions:\n  x:\n    dispatch: agent\n    command: [/bin/true]\n").contains("belong in the agent's configuration"))
        #expect(errors("actions:\n  x:\n    dispatch: everywhere\n").contains("'agent'"))
        #expect(errors("actions:\n  x:\n    cooldown: 1m\n").contains("or 'dispatch: agent'"))
        let hub = try AlertingConfig.parse("actions:\n  x:\n    dispatch: agent\n    cooldown: 1m\n", source: "a.yml")
        #expect(hub.actions["x"]?.dispatch == true && hub.actions["x"]?.argv.isEmpty == true)
        let agent = try AlertingConfig.parse("actions:\n  x:\n    command: [/bin/true]\n    from_hub: true\n", source: "a.yml")
        #expect(agent.actions["x"]?.fromHub == true)
    }

    /// A rule at a hub fires for the host whose agent opened a port; the hub dispatches the action, the agent
    /// runs it from its own allow-list and reports; readers, relays and other hosts' agents cannot dispatch
    /// or take the host's runs; an action outside the agent's allow-list is refused there.
    @Test func aHubsRuleMakesTheAgentAct() throws {
        let dir = try temporaryDirectory("hosttwin-dispatch-e2e")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hubDir = dir + "/hub", agentDir = dir + "/agent", marker = dir + "/acted"
        let token = try FleetTests.token(hubDir, host: "web-1")
        let stranger = try FleetTests.token(hubDir, host: "db-2")
        var roles: [String: String] = [:]
        for role in ["reader", "relay", "admin"] {
            roles[role] = try EndToEndTests.cli(["token", "create", "--role", role, "--data-dir", hubDir]).stdout.split(separator: "\n").last.map(String.init)
        }
        try token.write(toFile: dir + "/agent.token", atomically: true, encoding: .utf8)
        try roles["admin"]!.write(toFile: dir + "/admin.token", atomically: true, encoding: .utf8)
        let watched = try ServerTests.freePort()
        try """
            groups:
            - name: dispatch
              interval: 1s
              rules:
              - alert: TestPortOpen
                state: {kind: listening_ports, match: {port: "\(watched)"}}
                actions: [mark]
            """.write(toFile: dir + "/rules.yml", atomically: true, encoding: .utf8)
        try "actions:\n  mark:\n    dispatch: agent\n    cooldown: 1m\n".write(toFile: dir + "/hub-alerting.yml", atomically: true, encoding: .utf8)
        try "actions:\n  mark:\n    command: [/usr/bin/touch, \(marker)]\n    from_hub: true\n  local_only:\n    command: [/bin/true]\n"
            .write(toFile: dir + "/agent-alerting.yml", atomically: true, encoding: .utf8)
        let port = try ServerTests.freePort()
        let hub = try ServerTests.start(["serve", "--data-dir", hubDir, "--listen", "127.0.0.1:\(port)", "--rules", dir + "/rules.yml",
                                         "--alerting", dir + "/hub-alerting.yml", "--no-default-rules"])
        defer { if hub.isRunning { hub.terminate(); hub.waitUntilExit() } }
        #expect(try EndToEndTests.eventually(20) { LoopbackHTTP.get(port: port, "/healthz")?.status == 200 })
        let agent = try ServerTests.start(["agent", "--data-dir", agentDir, "--host-name", "web-1", "--interval", "500ms", "--push", "http://127.0.0.1:\(port)",
                                           "--token-file", dir + "/agent.token", "--alerting", dir + "/agent-alerting.yml"])
        defer { if agent.isRunning { agent.terminate(); agent.waitUntilExit() } }
        #expect(try EndToEndTests.eventually(30) { FleetTests.cursor(port, token: token).1 >= 4 }, "the hub never received the agent's ticks")

        func post(_ path: String, _ form: String, _ token: String?) -> (status: Int, body: String) {
            var headers = ["Content-Type": "application/x-www-form-urlencoded"]
            if let token { headers["Authorization"] = "Bearer \(token)" }
            let r = LoopbackHTTP.request(port: port, method: "POST", path: path, headers: headers, body: Array(form.utf8))
            return (r?.status ?? 0, r?.body ?? "")
        }
        func get(_ path: String, _ token: String) -> (status: Int, body: String) {
            let r = LoopbackHTTP.request(port: port, method: "GET", path: path, headers: ["Authorization": "Bearer \(token)"], timeout: 10)
            return (r?.status ?? 0, r?.body ?? "")
        }
        // Who may not dispatch, nor take or report a host's runs.
        #expect(post("/api/v1/actions/dispatch", "host=web-1&action=mark", nil).status == 401)
        #expect(post("/api/v1/actions/dispatch", "host=web-1&action=mark", roles["reader"]).status == 403)
        #expect(post("/api/v1/actions/dispatch", "host=web-1&action=mark", roles["relay"]).status == 403)
        #expect(post("/api/v1/actions/dispatch", "host=web-1&action=mark", token).status == 403, "an agent token cannot dispatch")
        #expect(get("/api/v1/agent/actions?host=web-1&wait=0", stranger).status == 403, "another host's agent cannot take web-1's runs")
        #expect(get("/api/v1/agent/actions?host=web-1&wait=0", roles["reader"]!).status == 403)
        #expect(get("/api/v1/agent/actions?host=web-1&wait=0", roles["relay"]!).status == 403)
        #expect(post("/api/v1/agent/actions/result", "host=web-1&id=1&status=exit%200", stranger).status == 403)
        for bad in ["host=web-1&action=rm%20-rf", "host=web-1&action=%24%28id%29", "host=&action=mark", "action=mark"] {
            #expect(post("/api/v1/actions/dispatch", bad, roles["admin"]).status == 400, "\(bad)")
        }
        #expect(post("/api/v1/agent/actions/result", "host=web-1&id=999999&status=exit%200", token).status == 404)
        #expect(post("/api/v1/agent/actions/result", "host=web-1&id=1&status=x&argv=%7B%7D", token).status == 400)
        #expect(!FileManager.default.fileExists(atPath: marker), "nothing ran")

        // The port opens: the hub's rule fires for web-1 and the agent acts.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(watched).bigEndian
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 } }
        try #require(bound && listen(listener, 4) == 0, "cannot listen on \(watched)")
        let opened = TwinTime.nowMillis()
        #expect(try EndToEndTests.eventually(30) { FileManager.default.fileExists(atPath: marker) }, "the agent never ran the dispatched action")
        let acted = Int64(((try? FileManager.default.attributesOfItem(atPath: marker)[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0) * 1000)
        func hubRuns() -> [[String: Any]] {
            ((ServerTests.json(get("/api/v1/twin/actions?from=-1h", roles["admin"]!).body)["data"] as? [String: Any])?["runs"] as? [[String: Any]]) ?? []
        }
        #expect(EndToEndTests.eventually(20) { hubRuns().contains { ($0["status"] as? String) == "agent web-1: exit 0" } }, "\(hubRuns())")
        let run = try #require(hubRuns().first { $0["action"] as? String == "mark" })
        #expect(run["agent"] as? String == "web-1" && (run["argv"] as? [String]) == ["/usr/bin/touch", marker], "\(run)")
        print("dispatch: port opened, agent acted \(acted - opened) ms later (the hub's rule dispatched at +\(((run["time"] as? NSNumber)?.int64Value ?? 0) - opened) ms)")
        #expect(acted - opened <= 10_000, "the agent acted \(acted - opened) ms after the port opened")

        // An admin's dispatch of an action the agent does not open to hubs: refused there, and said so here.
        let manual = post("/api/v1/actions/dispatch", "host=web-1&action=local_only&comment=test", roles["admin"])
        #expect(manual.status == 200, "\(manual)")
        #expect(EndToEndTests.eventually(20) { hubRuns().contains { ($0["status"] as? String)?.hasPrefix("agent web-1: refused: local_only is not open to hubs") == true } },
                "\(hubRuns())")
        // The CLI's dispatch waits for the report.
        let cli = try EndToEndTests.cli(["actions", "dispatch", "nothing_here", "--host", "web-1", "--url", "http://127.0.0.1:\(port)", "--token-file", dir + "/admin.token"])
        #expect(cli.status == 0 && cli.stdout.contains("refused: nothing_here is not in this agent's allow-list"), "\(cli.stdout) \(cli.stderr)")
        // The agent keeps its own record of what it ran and refused.
        agent.terminate()
        agent.waitUntilExit()
        let local = try EndToEndTests.cli(["actions", "list", "--data-dir", agentDir, "--json"]).stdout
        #expect(local.contains("\"status\" : \"exit 0\"") && local.contains("refused (from 127.0.0.1:\(port))"), "\(local)")
        let audit = try EndToEndTests.cli(["audit", "show", "--data-dir", hubDir, "--json"]).stdout
        #expect(audit.contains("action.dispatch"), "the admin's dispatch is audited")
    }
}
