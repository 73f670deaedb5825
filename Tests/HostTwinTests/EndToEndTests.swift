import Foundation
import Testing
import TwinCore
@testable import TwinStorage
import TwinServer

/// Runs the real `hosttwin` binary as a user would: `run` on a temporary data directory, then the CLI
/// against it while it runs and after it stopped.
@Suite(.serialized) struct EndToEndTests {
    static let binary: String? = {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("hosttwin").path,
            Fixtures.packageRoot + "/.build/debug/hosttwin",
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    struct CLIResult { var status: Int32; var stdout: String; var stderr: String }

    @discardableResult
    static func cli(_ args: [String]) throws -> CLIResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try #require(binary, "build the hosttwin executable first (swift build)"))
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return CLIResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    static func json(_ args: [String]) throws -> Any {
        let r = try cli(args)
        guard r.status == 0 else { throw TwinError.badInput("hosttwin \(args.joined(separator: " ")) failed: \(r.stderr)") }
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
    }

    static func startRun(_ dir: String, port: Int, extra: [String] = ["--interval", "1s"], stderr: Pipe? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try #require(binary))
        p.arguments = ["run", "--data-dir", dir, "--listen", "127.0.0.1:\(port)", "--log-level", "warning"] + extra
        p.standardOutput = FileHandle.nullDevice
        p.standardError = stderr ?? FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Polls `body` every 200 ms until it returns true or `seconds` pass.
    static func eventually(_ seconds: Double, _ body: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try body() { return true }
            usleep(200_000)
        }
        return try body()
    }

    /// A TCP socket listening on 127.0.0.1 at an ephemeral port.
    static func listeningSocket() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && listen(fd, 8) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw TwinError.unavailable("cannot open a listening socket") }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }

    static func ports(_ dir: String, at: String = "now") throws -> [[String: Any]] {
        try json(["ports", "--data-dir", dir, "--json", "--at", at]) as? [[String: Any]] ?? []
    }

    static func processes(_ dir: String, at: String = "now") throws -> [[String: Any]] {
        try json(["ps", "--data-dir", dir, "--json", "--at", at]) as? [[String: Any]] ?? []
    }

    /// Change-driven capture: with ticks 10 s apart, a process that starts and one that ends between two
    /// ticks are in the store within a second, at the time they changed, from the kernel's process events.
    @Test(.enabled(if: getuid() == 0, "the kernel's process events need root (CAP_NET_ADMIN)"))
    func processesAreStoredBetweenTicksFromKernelEvents() throws {
        guard Self.binary != nil else { Issue.record("hosttwin binary not built"); return }
        let dir = try temporaryDirectory("e2e-events")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let watched = try temporaryDirectory("e2e-watched")
        defer { try? FileManager.default.removeItem(atPath: watched) }
        // A debug build's ticks alone cost more than the default budget: this checks the mechanism, not the budget.
        let run = try Self.startRun(dir, port: Int.random(in: 20_000...40_000), extra: ["--interval", "10s", "--cpu-budget", "50%", "--watch", watched])
        defer { if run.isRunning { kill(run.processIdentifier, SIGKILL) } }
        #expect(try Self.eventually(25) { !((try? Self.processes(dir)) ?? []).isEmpty }, "the first tick is stored")
        // Start in the middle of the 10 s between two ticks.
        while TwinTime.nowMillis() % 10_000 > 3_000 { usleep(100_000) }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sleep")
        child.arguments = ["300"]
        try child.run()
        let started = TwinTime.nowMillis()
        let pid = Int(child.processIdentifier)
        let seen = try Self.eventually(2) { try Self.processes(dir).contains { ($0["pid"] as? Int) == pid } }
        #expect(seen, "the process is in `ps` within 2 s, with the next tick up to 7 s away")
        let version = try Self.processes(dir).first { ($0["pid"] as? Int) == pid }
        let from = try TwinTime.parse(version?["valid_from"] as? String ?? "")
        #expect(from >= started - 1000 && from <= started + 1000, "valid from its start (\(from - started) ms after it)")
        #expect(from % 10_000 != 0, "a time between ticks, not a tick's")
        #expect(version?["command"] as? String == "/bin/sleep 300", "read after its exec")
        usleep(1_500_000) // `--at` below is whole seconds
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        let ended = TwinTime.nowMillis()
        // Only telling when the next tick is more than 2.5 s away (a loaded machine may have taken longer to get here).
        if 10_000 - ended % 10_000 > 2_500 {
            #expect(try Self.eventually(2) { try !Self.processes(dir).contains { ($0["pid"] as? Int) == pid } }, "its exit is stored within 2 s")
        }
        #expect(try Self.processes(dir, at: TwinTime.rfc3339(ended - 300)).contains { ($0["pid"] as? Int) == pid }, "`ps --at` just before the exit has it")

        // Listeners: no kernel event, but once the set changed the twin polls it fast for a while.
        let (fdA, portA) = try Self.listeningSocket()
        defer { close(fdA) }
        #expect(try Self.eventually(12) { try Self.ports(dir).contains { ($0["port"] as? Int) == portA } }, "the first new listener by the next tick")
        let (fdB, portB) = try Self.listeningSocket()
        defer { close(fdB) }
        let openedB = TwinTime.nowMillis()
        #expect(try Self.eventually(1.5) { try Self.ports(dir).contains { ($0["port"] as? Int) == portB } }, "a second one while the set is changing within 1.5 s")
        let b = try Self.ports(dir).first { ($0["port"] as? Int) == portB }
        let fromB = try TwinTime.parse(b?["valid_from"] as? String ?? "")
        #expect(fromB - openedB < 1000 && fromB % 10_000 != 0, "stored by a fast poll, \(fromB - openedB) ms after it opened")

        // A file written under a watched directory: inotify wakes the loop.
        let file = watched + "/app.conf"
        let written = TwinTime.nowMillis()
        try "listen = 8080\n".write(toFile: file, atomically: false, encoding: .utf8)
        func fileVersion() throws -> [String: Any]? {
            let state = try Self.json(["state", "--data-dir", dir, "--at", "now", "--kind", "files", "--json"]) as? [String: Any]
            return (state?["entities"] as? [[String: Any]])?.first { $0["key"] as? String == file }
        }
        #expect(try Self.eventually(1.5) { try fileVersion() != nil }, "the written file within 1.5 s")
        let fromFile = try TwinTime.parse(try fileVersion()?["valid_from"] as? String ?? "")
        #expect(fromFile - written < 1000 && fromFile % 10_000 != 0, "stored on its inotify event, \(fromFile - written) ms after the write")
        kill(run.processIdentifier, SIGTERM)
        run.waitUntilExit()
        #expect(run.terminationStatus == 0)
    }

    @Test func processAndPortAppearAndDisappear() throws {
        guard Self.binary != nil else { Issue.record("hosttwin binary not built"); return }
        let dir = try temporaryDirectory("e2e")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let httpPort = Int.random(in: 20_000...40_000)
        let run = try Self.startRun(dir, port: httpPort)
        defer { if run.isRunning { kill(run.processIdentifier, SIGKILL) } }
        #expect(try Self.eventually(20) { (try? Self.processes(dir))?.contains { $0["name"] as? String == "hosttwin" } ?? false },
                "run stores processes within 20 s")
        let before = TwinTime.nowMillis()
        usleep(1_100_000)

        // The server answers on loopback: health, and a summary of the host now.
        let health = try #require(LoopbackHTTP.get(port: httpPort, "/healthz"))
        #expect(health.0 == 200)
        let healthJSON = try JSONSerialization.jsonObject(with: Data(health.1.utf8)) as? [String: Any]
        #expect(healthJSON?["status"] as? String == "ok")
        let summary = try #require(LoopbackHTTP.get(port: httpPort, "/api/v1/summary"))
        #expect(summary.0 == 200)
        let summaryJSON = try JSONSerialization.jsonObject(with: Data(summary.1.utf8)) as? [String: Any]
        #expect((summaryJSON?["host"] as? [String: Any])?["hostname"] != nil)
        #expect(((summaryJSON?["summary"] as? [String: Any])?["memory_total_bytes"] as? Double ?? 0) > 0)
        #expect(LoopbackHTTP.get(port: httpPort, "/no/such/route")?.0 == 404)

        let opened = Date()
        let (fd, port) = try Self.listeningSocket()
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sleep")
        child.arguments = ["300"]
        try child.run()
        let childPid = Int(child.processIdentifier)
        let myPid = Int(getpid())

        let sawPort = try Self.eventually(5) { try Self.ports(dir).contains { ($0["port"] as? Int) == port } }
        #expect(sawPort, "listening port \(port) appears in `ports`")
        // Visible within one second of the tick after it opened (plus the polling CLI's own latency).
        let latency = Date().timeIntervalSince(opened)
        print("new listening port visible in `ports` after \(String(format: "%.2f", latency)) s")
        #expect(latency < 3.0)
        let p = try Self.ports(dir).first { ($0["port"] as? Int) == port }
        #expect(p?["protocol"] as? String == "tcp")
        #expect(p?["address"] as? String == "127.0.0.1")
        #expect(p?["pid"] as? Int == myPid, "the port is mapped to the test process")
        #expect(p?["valid_to"] is NSNull)
        // A tick may read the child between its fork and its exec (the test runner's name and command line,
        // seen on a loaded CI machine); the exec's event has it read again at the next tick.
        #expect(try Self.eventually(5) { try Self.processes(dir).contains { ($0["pid"] as? Int) == childPid && $0["name"] as? String == "sleep" } },
                "child process appears in `ps` after its exec")
        let proc = try Self.processes(dir).first { ($0["pid"] as? Int) == childPid }
        #expect(proc?["name"] as? String == "sleep")
        #expect(proc?["command"] as? String == "/bin/sleep 300")
        #expect(proc?["ppid"] as? Int == myPid)
        for field in ["user", "state", "start_time", "kind", "key", "attributes", "valid_from"] { #expect(proc?[field] != nil, "process has \(field)") }
        let during = TwinTime.nowMillis()
        usleep(1_100_000)

        // SIGKILL: a test runner may hand its children a blocked SIGTERM.
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        close(fd)
        #expect(try Self.eventually(5) { try !Self.ports(dir).contains { ($0["port"] as? Int) == port } }, "port disappears")
        #expect(try Self.eventually(5) { try !Self.processes(dir).contains { ($0["pid"] as? Int) == childPid } }, "child disappears")
        let after = TwinTime.nowMillis()

        // As of each moment, the state shows exactly what was there.
        func stateHas(_ at: Int64) throws -> (port: Bool, child: Bool) {
            let s = try Self.json(["state", "--data-dir", dir, "--json", "--at", String(Double(at) / 1000)]) as? [String: Any]
            let entities = s?["entities"] as? [[String: Any]] ?? []
            let hasPort = entities.contains { $0["kind"] as? String == "listening_ports" && (($0["attributes"] as? [String: Any])?["port"] as? Int) == port }
            let hasChild = entities.contains { $0["kind"] as? String == "processes" && (($0["attributes"] as? [String: Any])?["pid"] as? Int) == childPid }
            return (hasPort, hasChild)
        }
        #expect(try stateHas(before) == (false, false))
        #expect(try stateHas(during) == (true, true))
        #expect(try stateHas(after) == (false, false))

        let d1 = try Self.json(["diff", "--data-dir", dir, "--json", "--from", String(Double(before) / 1000), "--to", String(Double(during) / 1000)]) as? [String: Any]
        let appeared = d1?["appeared"] as? [[String: Any]] ?? []
        #expect(appeared.contains { $0["kind"] as? String == "listening_ports" && $0["key"] as? String == "tcp/127.0.0.1/\(port)" })
        #expect(appeared.contains { $0["kind"] as? String == "processes" && ($0["key"] as? String)?.hasPrefix("\(childPid)@") == true })
        let d2 = try Self.json(["diff", "--data-dir", dir, "--json", "--from", String(Double(during) / 1000), "--to", String(Double(after) / 1000)]) as? [String: Any]
        let gone = d2?["disappeared"] as? [[String: Any]] ?? []
        #expect(gone.contains { $0["key"] as? String == "tcp/127.0.0.1/\(port)" })
        #expect(gone.contains { ($0["key"] as? String)?.hasPrefix("\(childPid)@") == true })

        // A clean stop on SIGTERM; the history stays readable afterwards.
        run.terminate()
        run.waitUntilExit()
        #expect(run.terminationStatus == 0)
        #expect(try Self.processes(dir, at: String(Double(during) / 1000)).contains { ($0["pid"] as? Int) == childPid })
        let status = try Self.json(["status", "--data-dir", dir, "--json", "--at", String(Double(during) / 1000)]) as? [String: Any]
        #expect((status?["host"] as? [String: Any])?["hostname"] != nil)
        #expect(status?["running"] as? Bool == false)
        let series = try Self.cli(["series", "--data-dir", dir, "--match", "node_load1"])
        #expect(series.stdout.contains("node_load1"))
        let samples = try Self.json(["samples", "node_load1", "--data-dir", dir, "--json", "--from", String(Double(before) / 1000), "--to", String(Double(after) / 1000)]) as? [String: Any]
        #expect(((samples?["samples"] as? [Any])?.count ?? 0) >= 2)
    }

    /// A port already taken: `run` says which address it could not listen on, seals its store and exits. It
    /// used to go on collecting without a server, its service group gone and SIGTERM with it.
    @Test func runStopsWithAClearErrorWhenItsPortIsTaken() throws {
        guard Self.binary != nil else { Issue.record("hosttwin binary not built"); return }
        let taken = try Self.listeningSocket()
        defer { close(taken.fd) }
        let dir = try temporaryDirectory("e2e-port")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let err = Pipe()
        let p = try Self.startRun(dir, port: taken.port, extra: [], stderr: err)
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let exited = Self.eventually(30) { !p.isRunning }
        #expect(exited, "run exits when it cannot listen")
        guard exited else { return }
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus != 0)
        #expect(stderr.contains("cannot listen on 127.0.0.1:\(taken.port)"), "stderr: \(stderr)")
    }

    @Test func helpListsEveryCommandAndTheirOptions() throws {
        guard Self.binary != nil else { Issue.record("hosttwin binary not built"); return }
        let help = try Self.cli(["--help"]).stdout
        for command in ["run", "status", "ps", "ports", "mounts", "services", "interfaces", "packages", "users",
                        "state", "diff", "events", "series", "samples", "export", "metrics", "collectors", "import", "check", "repair", "bench"] {
            #expect(help.contains("  \(command) "), "root help lists \(command)")
        }
        for (command, option) in [("ps", "--at"), ("ports", "--json"), ("diff", "--from"), ("samples", "--to"), ("run", "--listen"),
                                  ("run", "--interval"), ("series", "--match"), ("status", "--data-dir"), ("samples", "--step"),
                                  ("import", "--quiet"), ("export", "--match"), ("check", "--json"), ("repair", "--data-dir"),
                                  ("run", "--retention-raw"), ("bench storage", "--no-generated")] {
            #expect(try Self.cli(command.split(separator: " ").map(String.init) + ["--help"]).stdout.contains(option), "\(command) --help shows \(option)")
        }
        let bad = try Self.cli(["ps", "--at", "yesterday-ish", "--data-dir", "/nonexistent"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("cannot read time"))
        // Sizes: a clear refusal of what is not one, and of a disk cap too small to hold a head window.
        for (args, message) in [(["headroom", "--memory", "4X"], "--memory 4X: expected a size"), (["headroom", "--memory=-1G"], "expected a size"),
                                (["agent", "--push", "http://127.0.0.1:1", "--disk-cap", "lots"], "--disk-cap lots: expected a size"),
                                (["agent", "--push", "http://127.0.0.1:1", "--disk-cap", "1M"], "below 16 MiB")] {
            let r = try Self.cli(args + ["--data-dir", "/nonexistent/x"])
            #expect(r.status != 0 && r.stderr.contains(message), "\(args): \(r.stderr.prefix(300))")
        }
        for (command, option) in [("agent", "--disk-cap"), ("agent", "--reconcile-every"), ("run", "--disk-cap")] {
            #expect(try Self.cli([command, "--help"]).stdout.contains(option), "\(command) --help shows \(option)")
        }
    }
}
