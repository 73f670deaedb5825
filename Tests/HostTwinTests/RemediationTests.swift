import Foundation
import Logging
import Synchronization
import Testing
import TwinCollectors
import TwinCore
import TwinQuery
@testable import TwinRules
@testable import TwinRuntime
import TwinSecurity
import TwinStorage

@Suite struct RemediationTests {
    @Test func argvProcessRunsWithoutAShellAndCleanly() throws {
        var p = ArgvProcess(argv: ["/usr/bin/env"])
        p.environment = ["HOSTTWIN_ALERT": "X"]
        let env = try p.run()
        #expect(env.succeeded && env.status == "exit 0")
        let names = Set(env.output.split(separator: "\n").compactMap { $0.split(separator: "=").first.map(String.init) })
        #expect(names == ["PATH", "LANG", "LC_ALL", "HOSTTWIN_ALERT"], "the environment is cleaned: \(names)")
        // Arguments arrive as given: a shell would have expanded these.
        let echo = try ArgvProcess(argv: ["/bin/echo", "$HOME", "a;b", "*"]).run()
        #expect(echo.output == "$HOME a;b *\n")
        var cat = ArgvProcess(argv: ["/bin/cat"])
        cat.stdin = Array("piped".utf8)
        #expect(try cat.run().output == "piped")
        let failing = try ArgvProcess(argv: ["/bin/sh", "-c", "exit 3"]).run()
        #expect(failing.status == "exit 3" && !failing.succeeded)
    }

    @Test func hangingAndNoisyProgramsAreBounded() throws {
        var sleeper = ArgvProcess(argv: ["/bin/sleep", "30"])
        sleeper.timeout = 300
        let r = try sleeper.run()
        #expect(r.status == "timeout" && r.millis < 3_000, "\(r)")
        // A child that ignores SIGTERM is killed a second later with the whole group.
        var stubborn = ArgvProcess(argv: ["/bin/sh", "-c", "trap '' TERM; sleep 30"])
        stubborn.timeout = 300
        let s = try stubborn.run()
        #expect(s.status == "timeout" && s.millis < 4_000, "\(s)")
        var noisy = ArgvProcess(argv: ["/usr/bin/head", "-c", "1000000", "/dev/zero"])
        noisy.outputLimit = 1000
        let n = try noisy.run()
        #expect(n.succeeded && n.output.utf8.count == 1000 && n.outputCut)
    }

    /// Hostile alerting configurations are refused with their line; nothing runs.
    @Test func badActionsAreRefused() throws {
        func errors(_ text: String) -> String {
            do { _ = try AlertingConfig.parse(text, source: "a.yml"); return "" } catch { return "\(error)" }
        }
        #expect(errors("actions:\n  x:\n    command: /bin/rm -rf /tmp/x\n").contains("must be a list"))
        #expect(errors("actions:\n  x:\n    command: [rm, -rf, /tmp/x]\n").contains("absolute path"))
        #expect(errors("actions:\n  x:\n    command: [/bin/rm, '/tmp/x; reboot']\n").contains("shell character ';'"))
        #expect(errors("actions:\n  x:\n    command: [/bin/echo, '$(id)']\n").contains("shell character '$'"))
        #expect(errors("actions:\n  x:\n    command: [/etc/passwd]\n").contains("not an executable"))
        #expect(errors("actions:\n  x:\n    command: [/bin/true]\n    shell: true\n").contains("a.yml:4:5: action 'x': unknown field 'shell'"))
        #expect(errors("actions:\n  x:\n    command: [/bin/true]\n    user: no-such-user-here\n").contains("no such user"))
        #expect(errors("notify:\n  - webhook: file:///etc/passwd\n").contains("not an http(s) URL"))
        #expect(errors("notify:\n  - command: '/bin/mail root'\n").contains("must be a list"))
        let ok = try AlertingConfig.parse("notify:\n  - log: true\nactions:\n  fix:\n    command: [/bin/true]\n    cooldown: 1m\n", source: "a.yml")
        #expect(ok.channels == [.log] && ok.actions["fix"]?.cooldown == 60_000)
        // A rule naming an action outside the allow-list is refused.
        let dir = try temporaryDirectory("hosttwin-actions")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: vector(1)\n    actions: [reboot]\n".write(toFile: dir + "/r.yml", atomically: true, encoding: .utf8)
        #expect(throws: RuleFileErrors.self) { try RuleSources(files: [dir + "/r.yml"], includeDefaults: false, allowedActions: ["fix"]).load() }
    }

    /// Detection to action within 5 s at 1 s collection: a tmpfs the test mounts is filled; the rule's
    /// alert fires, its action frees the space, the alert resolves, and the store holds every step with
    /// its time. Needs root (mount); elsewhere it is skipped.
    @Test(.enabled(if: DiskFullTests.canMountTmpfs, "needs root and permission to mount a small tmpfs"))
    func aFillingFilesystemIsRemediated() throws {
        guard let binary = EndToEndTests.binary else { Issue.record("hosttwin binary not built"); return }
        let work = try temporaryDirectory("hosttwin-remedy")
        let mnt = work + "/mnt"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        try DiskFullTests.mountTmpfs(mnt, size: "4m")
        defer { DiskFullTests.unmount(mnt) }
        try """
            groups:
            - name: space
              interval: 1s
              rules:
              - alert: TestFilesystemFull
                expr: node_filesystem_avail_bytes{mountpoint="\(mnt)"} / node_filesystem_size_bytes{mountpoint="\(mnt)"} < 0.3
                labels: {severity: critical}
                actions: [free_space]
            """.write(toFile: work + "/rules.yml", atomically: true, encoding: .utf8)
        try """
            notify:
              - log: true
            actions:
              free_space:
                command: [/bin/rm, -f, \(mnt)/fill]
                timeout: 5s
                cooldown: 10s
            """.write(toFile: work + "/alerting.yml", atomically: true, encoding: .utf8)
        let dataDir = work + "/data"
        let logPath = work + "/run.log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let run = Process()
        run.executableURL = URL(fileURLWithPath: binary)
        run.arguments = ["run", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--interval", "1s", "--rules", work + "/rules.yml",
                         "--alerting", work + "/alerting.yml", "--no-default-rules", "--disable", "packages"]
        run.standardOutput = FileHandle.nullDevice
        run.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try run.run()
        defer { if run.isRunning { kill(run.processIdentifier, SIGKILL) } }
        func store() -> TwinStore? { try? TwinStore.open(dataDir: dataDir, readOnly: true) }
        func watched() -> Bool {
            guard let s = store(), let e = try? PromQLParser.parse("node_filesystem_avail_bytes{mountpoint=\"\(mnt)\"}"),
                  case .vector(_, let v)? = try? PromQLEngine(source: StoreSampleSource(store: s)).instant(e, at: TwinTime.nowMillis()) else { return false }
            return !v.isEmpty
        }
        #expect(try EndToEndTests.eventually(30) { watched() }, "run watches the tmpfs")
        // Fill 3.5 of its 4 MiB.
        let filled = TwinTime.nowMillis()
        try Data(repeating: 7, count: 3_500_000).write(to: URL(fileURLWithPath: mnt + "/fill"))
        #expect(try EndToEndTests.eventually(30) { !FileManager.default.fileExists(atPath: mnt + "/fill") }, "the action removed the file")
        #expect(try EndToEndTests.eventually(30) { (try? store()?.alertHistory(from: filled - 5_000, to: .max).contains { $0.state == "resolved" }) == true })
        #expect(try EndToEndTests.eventually(15) { (try? store()?.actionRuns(from: 0, to: .max).first?.cleared) != nil })
        kill(run.processIdentifier, SIGTERM)
        run.waitUntilExit()
        let s = try #require(store())
        let history = try s.alertHistory(from: filled - 5_000, to: .max)
        let fired = try #require(history.first { $0.state == "firing" }), resolved = try #require(history.first { $0.state == "resolved" })
        let runs = try s.actionRuns(from: 0, to: .max)
        let action = try #require(runs.first)
        #expect(runs.count == 1 && action.action == "free_space" && action.status == "exit 0" && action.argv == ["/bin/rm", "-f", mnt + "/fill"], "\(runs)")
        #expect(action.cleared == true, "the alert had cleared at the evaluation after the action")
        // Detection to action: from the write to the action's start (the evaluation that fired it).
        #expect(action.time - filled <= 5_000, "action \(action.time - filled) ms after the fill")
        #expect(fired.time <= action.time && resolved.time > action.time, "fired \(fired.time - filled), action \(action.time - filled), resolved \(resolved.time - filled) ms after the fill")
        let delivered = try s.deliveries(from: 0, to: .max)
        #expect(delivered.contains { $0.channel == "log" && $0.ok }, "\(delivered)")
        print("remediation: fired \(fired.time - filled) ms, action \(action.time - filled) ms (\(action.millis) ms run), resolved \(resolved.time - filled) ms after the fill")
    }
}

@Suite struct SuppressionTests {
    func alert(_ labels: [String: String], _ state: Alert.State = .firing) -> Alert {
        Alert(group: "g", rule: labels["alertname"] ?? "A", labels: Labels(dictionary: labels), annotations: .empty, state: state, activeAt: 0, value: 1)
    }

    @Test func silencesAndInhibitionKeepAlertsFromNotificationsAndActions() throws {
        #expect(throws: (any Error).self) { try AlertSuppression.matchers([]) }
        #expect(throws: (any Error).self) { try AlertSuppression.matchers(["host=~.*"]) }
        #expect(throws: (any Error).self) { try AlertSuppression.matchers(["=x"]) }
        #expect(throws: (any Error).self) { try AlertSuppression.matchers(["a=~("]) }
        let disk = alert(["alertname": "DiskFull", "host": "web-1", "severity": "critical"])
        let port = alert(["alertname": "NewListeningPort", "host": "web-2"])
        let silence = SilenceRecord(created: 0, starts: 100, ends: 200, matchers: ["alertname=DiskFull", "host=~web-.*"], comment: "maintenance", author: "me")
        let config = AlertingConfig()
        #expect(config.suppressed([disk, port], silences: [silence], at: 150) == [disk.labels])
        #expect(config.suppressed([disk, port], silences: [silence], at: 200).isEmpty, "a silence ends at its end")
        // The built-in inhibition: a silent host's other alerts are held back, other hosts' are not.
        let silent = alert(["alertname": "HostSilent", "host": "web-1"])
        #expect(config.suppressed([disk, port, silent], silences: [], at: 0) == [disk.labels])
        #expect(config.suppressed([disk, port, alert(["alertname": "HostSilent", "host": "web-1"], .pending)], silences: [], at: 0).isEmpty,
                "only a firing source inhibits")
        let custom = try AlertingConfig.parse("inhibit:\n  - source_matchers: [severity=critical]\n    target_matchers: [severity=warning]\n    equal: [host]\n", source: "a.yml")
        let warn1 = alert(["alertname": "W", "host": "web-1", "severity": "warning"]), warn2 = alert(["alertname": "W", "host": "web-2", "severity": "warning"])
        #expect(custom.suppressed([disk, warn1, warn2], silences: [], at: 0) == [warn1.labels])
    }

    @Test func silencesAreStoredAndServed() async throws {
        let dir = try temporaryDirectory("hosttwin-silences")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TwinStore.open(dataDir: dir)
        let now = TwinTime.nowMillis()
        let id = try store.insertSilence(SilenceRecord(created: now, starts: now, ends: now + 3_600_000, matchers: ["alertname=X"], comment: "c", author: "a"))
        #expect(try store.silences(endingAfter: now).map(\.id) == [id])
        #expect(try store.expireSilence(id: id, at: now + 1))
        #expect(try store.silences(endingAfter: now + 1).isEmpty)
        #expect(try !store.expireSilence(id: id, at: now + 2), "an ended silence cannot be expired again")
        #expect(try store.silences().count == 1)
    }
}

/// The rule service reads state conditions from the latest ticks instead of the store once one tick has run
/// every collector: the first tick does (real /proc here), a tick where only the due collectors ran does not.
@Suite struct RuleSnapshotTests {
    @Test func theFirstTickRunsEveryCollectorAndALaterOneNeedNot() {
        let sampler = Sampler()
        let t0: Int64 = 1_790_000_000_000
        func tick(_ t: Int64) -> CommittedTick {
            let obs = sampler.tick(now: t)
            return CommittedTick(seq: 1, time: t, observation: obs, events: [], health: Array(sampler.health.values), ids: [], values: [], opened: [], closed: [])
        }
        let first = tick(t0), second = tick(t0 + 1000)
        #expect(first.health.count > 10, "\(first.health.count) collectors")
        #expect(RuleService.ranEveryCollector(first))
        // Some collectors (packages, accounts, …) run less often than every second.
        #expect(second.observation.health.count < first.observation.health.count)
        #expect(!RuleService.ranEveryCollector(second))
    }

    /// What the ticks hand to the sinks, kept; after the first, a child process is started (on the collection
    /// thread, so between the first two ticks however busy the test's own tasks are).
    final class Recorder: TickSink {
        let ticks = Mutex<[CommittedTick]>([])
        let child = Mutex<(process: Process, started: Int64)?>(nil)
        func committed(_ tick: CommittedTick) {
            guard ticks.withLock({ $0.append(tick); return $0.count == 1 }) else { return }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sleep")
            p.arguments = ["30"]
            guard (try? p.run()) != nil else { return }
            child.withLock { $0 = (p, TwinTime.nowMillis()) }
        }
        func collectionStopped() {}
    }

    /// A process stored between ticks (the kernel's event) reaches the sinks — the rules' snapshot, the live
    /// view — with the next tick, though the collector, which has it already, does not hand the list over
    /// again there (root only: the process events connector).
    @Test(.enabled(if: getuid() == 0, "the process events connector needs root")) func theNextTickCarriesWhatWasStoredBetweenTicks() async throws {
        let dir = try temporaryDirectory("hosttwin-between-ticks")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let only = CollectorSelection(enabled: Dictionary(uniqueKeysWithValues: CollectorRegistry.all.map { ($0.name, $0.name == "processes") }))
        var c = CollectionService.Configuration(paths: HostPaths(), selection: only, interval: 3000, dataPolicy: DataPolicy(),
                                                keys: try KeyRing(dataDir: dir, create: true), maxTicks: 4, changeDriven: true)
        c.cpuBudget = 0.5 // a debug build's ticks alone exceed the default
        let recorder = Recorder()
        let service = CollectionService(store: try TwinStore.open(dataDir: dir), configuration: c, sinks: [recorder], logger: Logger(label: "test"))
        try await service.run()
        let (child, started) = try #require(recorder.child.withLock { $0 }, "the child started")
        defer { kill(child.processIdentifier, SIGKILL); child.waitUntilExit() }
        let ticks = recorder.ticks.withLock { $0 }
        // The first tick begun after the child started (a loaded machine may have begun the second before).
        let next = try #require(ticks.first { $0.time > started }, "ticks at \(ticks.map(\.time)), child at \(started)")
        let list = next.observation.entities[.processes]
        #expect(list?.contains { $0.attributes["pid"] == .int(Int64(child.processIdentifier)) } == true,
                "\(list?.count ?? -1) processes handed to the sinks at the tick after the child started")
    }
}
