import Foundation
import Testing
@testable import TwinCollectors
import TwinCore
import TwinRuntime
import TwinSecurity
import TwinStorage

/// Runs a program (no shell) and returns its exit status and standard output.
private func tool(_ path: String, _ args: [String], input: String? = nil, in dir: String? = nil) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    if let dir { p.currentDirectoryURL = URL(fileURLWithPath: dir) }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    if let input {
        let inp = Pipe()
        p.standardInput = inp
        try p.run()
        inp.fileHandleForWriting.write(Data(input.utf8))
        try inp.fileHandleForWriting.close()
    } else {
        try p.run()
    }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

private func sha256sum(_ path: String) throws -> String {
    String(try tool("/usr/bin/sha256sum", [path]).1.prefix(64))
}

/// Configuration history: the `files` collector on real files with inotify, the unified diff against
/// patch(1), and the twin's rollback.
@Suite(.serialized) struct FilesTests {
    /// One collector over a watched tree and a SUID tree, called as the collection loop calls it.
    final class Harness {
        let collector = FileCollector()
        let reader = FileReader()
        let config: CollectorConfig
        var t: Int64

        init(watch: [String], suid: [String], t: Int64 = 1_800_000_000_000) {
            config = CollectorConfig(watchPaths: watch, suidPaths: suid)
            self.t = t
        }

        /// The last tick's samples.
        var samples: [MetricSample] = []

        /// One tick, one second after the last: the entities set (nil when nothing changed) and the outcome.
        func tick() throws -> ([Entity]?, CollectOutcome) {
            t += 1000
            var ctx = CollectContext(paths: HostPaths(), reader: reader, config: config, observation: Observation(timestamp: t))
            let outcome = try collector.collect(&ctx)
            samples = ctx.observation.samples
            return (ctx.observation.entities[.files], outcome)
        }

        func value(_ metric: String) -> Double? { samples.first { $0.key.metric == metric }?.value }

        /// Waits up to `seconds` for the collector's change descriptor to turn readable, then refreshes
        /// between ticks as the collection loop does: the entities set (nil when nothing was, or nothing came).
        func refreshWhenReadable(within seconds: Double) -> [Entity]? {
            guard let fd = collector.changeDescriptor else { return nil }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(seconds * 1000)) == 1 else { return nil }
            var ctx = CollectContext(paths: HostPaths(), reader: reader, config: config, observation: Observation(timestamp: t + 500))
            return collector.refreshChanged(&ctx) ? ctx.observation.entities[.files] : nil
        }

        /// A refresh between ticks without waiting for the descriptor.
        func refreshNow() -> [Entity]? {
            var ctx = CollectContext(paths: HostPaths(), reader: reader, config: config, observation: Observation(timestamp: t + 500))
            return collector.refreshChanged(&ctx) ? ctx.observation.entities[.files] : nil
        }

        /// What a tick does for the collector when it is not due.
        func keepUp() {
            var ctx = CollectContext(paths: HostPaths(), reader: reader, config: config, observation: Observation(timestamp: t + 500))
            collector.keepUp(&ctx)
        }
    }

    /// Whether this host lets the twin follow SUID files with fanotify (root, Linux 5.9 or later).
    static let fanotifyAvailable = SUIDChangeWatcher(roots: [NSTemporaryDirectory()], paths: HostPaths()) != nil

    /// Between scans, the kernel's events tell the collector which SUID files came, changed or went: a
    /// chmod, a file created set-user-ID, a tree moved in from outside the SUID paths, renamed, removed.
    /// The scan is then six hours away and the test's clock moves a minute, so only the events can find them.
    @Test(.enabled(if: fanotifyAvailable, "needs fanotify with directory handles (root, Linux 5.9+)"))
    func suidFilesAreFollowedBetweenScans() throws {
        let dir = try temporaryDirectory("hosttwin-suid-events")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bin = dir + "/bin", outside = dir + "/outside"
        for d in [bin, outside + "/tree/deep"] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: bin + "/helper"))
        try Data([4]).write(to: URL(fileURLWithPath: bin + "/plain"))
        chmod(bin + "/helper", 0o4755)
        let h = Harness(watch: [], suid: [bin])
        var latest: [Entity] = []
        /// Ticks (at most 600: the package lists read for a new file take a while in a debug build) until
        /// the SUID files are `paths`; their modes.
        func suidFiles(becoming paths: [String]) throws -> [String: String] {
            for _ in 0..<600 {
                latest = try h.tick().0 ?? latest
                if latest.map(\.key).sorted() == paths.map({ bin + $0 }).sorted() { break }
                usleep(20_000)
            }
            return Dictionary(uniqueKeysWithValues: latest.map { (String($0.key.dropFirst(bin.count)), $0.attributes["mode"]?.description ?? "") })
        }
        #expect(try suidFiles(becoming: ["/helper"]) == ["/helper": "4755"])
        #expect(h.value("hosttwin_files_suid_fanotify") == 1 && h.value("hosttwin_files_suid_scan_interval_seconds") == 21_600)

        chmod(bin + "/plain", 0o2755)
        #expect(try suidFiles(becoming: ["/helper", "/plain"]) == ["/helper": "4755", "/plain": "2755"])
        chmod(bin + "/helper", 0o755)
        #expect(try suidFiles(becoming: ["/plain"]) == ["/plain": "2755"])
        let made = open(bin + "/made", O_CREAT | O_WRONLY | O_CLOEXEC, 0o4700)
        #expect(made >= 0)
        close(made)
        #expect(try suidFiles(becoming: ["/plain", "/made"]) == ["/plain": "2755", "/made": "4700"])
        // A tree made outside the SUID paths (no event counts there), then moved in, renamed, removed.
        try Data([5]).write(to: URL(fileURLWithPath: outside + "/tree/deep/x"))
        chmod(outside + "/tree/deep/x", 0o4711)
        #expect(rename(outside + "/tree", bin + "/tree") == 0)
        #expect(try suidFiles(becoming: ["/plain", "/made", "/tree/deep/x"])["/tree/deep/x"] == "4711")
        #expect(rename(bin + "/tree", bin + "/renamed") == 0)
        #expect(try suidFiles(becoming: ["/plain", "/made", "/renamed/deep/x"]).keys.sorted() == ["/made", "/plain", "/renamed/deep/x"])
        try FileManager.default.removeItem(atPath: bin + "/renamed")
        unlink(bin + "/made")
        #expect(try suidFiles(becoming: ["/plain"]) == ["/plain": "2755"])
        // The hash follows a rewrite that keeps the bits (chmod after it, as an install does).
        try Data([9, 9]).write(to: URL(fileURLWithPath: bin + "/plain"))
        chmod(bin + "/plain", 0o2755)
        for _ in 0..<600 where latest.first?.attributes["size"] != .int(2) { latest = try h.tick().0 ?? latest; usleep(20_000) }
        #expect(try latest.first?.attributes["sha256"] == .string(sha256sum(bin + "/plain")))
        // The SUID path itself moved away and back (the events are in its parent's directory).
        #expect(rename(bin, bin + ".old") == 0)
        #expect(try suidFiles(becoming: []) == [:])
        #expect(rename(bin + ".old", bin) == 0)
        #expect(try suidFiles(becoming: ["/plain"]) == ["/plain": "2755"])
    }

    /// Between ticks the collection loop waits on one descriptor for both kinds of kernel events: a watched
    /// file written and an SUID bit set are each in the twin without a tick. The SUID events are read at
    /// most once a second (a build elsewhere on the filesystem would otherwise wake the loop at every event):
    /// right after a read the descriptor is inotify's alone, a second later both again. A tick reads them too
    /// when the collector is not due.
    @Test(.enabled(if: fanotifyAvailable, "needs fanotify with directory handles (root, Linux 5.9+)"))
    func bothKindsOfEventsAreReadBetweenTicks() throws {
        let dir = try temporaryDirectory("hosttwin-between-ticks")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let conf = dir + "/etc", bin = dir + "/bin"
        for d in [conf, bin] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        try "a=1\n".write(toFile: conf + "/a.conf", atomically: false, encoding: .utf8)
        try Data([1]).write(to: URL(fileURLWithPath: bin + "/plain"))
        let h = Harness(watch: [conf], suid: [bin])
        _ = try h.tick()
        // The first scan's result (no SUID file) comes at a later tick.
        for _ in 0..<500 where h.value("hosttwin_files_suid_scan_cpu_seconds") == 0 { usleep(20_000); _ = try h.tick() }
        usleep(1_100_000)
        let both = try #require(h.collector.changeDescriptor)
        chmod(bin + "/plain", 0o4755)
        var seen: [Entity]?
        for _ in 0..<50 where !(seen ?? []).contains(where: { $0.key == bin + "/plain" }) { seen = h.refreshWhenReadable(within: 0.1) ?? seen }
        #expect(seen?.first { $0.key == bin + "/plain" }?.attributes["mode"] == "4755", "\(seen ?? [])")
        // Just read: inotify's descriptor alone, until a second has passed.
        let inotifyAlone = try #require(h.collector.changeDescriptor)
        #expect(inotifyAlone != both)
        try "a=2\n".write(toFile: conf + "/a.conf", atomically: false, encoding: .utf8)
        seen = nil
        for _ in 0..<50 where !(seen ?? []).contains(where: { $0.key == conf + "/a.conf" && $0.attributes["content"] == "a=2\n" }) {
            seen = h.refreshWhenReadable(within: 0.1) ?? seen
        }
        #expect(seen?.contains { $0.key == conf + "/a.conf" && $0.attributes["content"] == "a=2\n" } == true)
        usleep(1_100_000)
        #expect(h.collector.changeDescriptor == both)
        // Under the budget the loop holds refreshes back: a tick the collector is not due at reads the queue
        // anyway (`keepUp`), and the change is handed over at the next refresh (or run) even though that one,
        // less than a second later, does not read the queue itself.
        chmod(bin + "/plain", 0o755)
        usleep(1_100_000)
        h.keepUp()
        #expect(h.collector.changeDescriptor == inotifyAlone, "keepUp read the queue")
        let handedOver = h.refreshNow()
        #expect(handedOver != nil && handedOver?.contains { $0.key == bin + "/plain" } == false)
    }

    /// fanotify's records as the kernel lays them out (fanotify(7)), and malformed ones: skipped, never read past.
    @Test func fanotifyEventsAreParsedAndMalformedOnesSkipped() {
        func event(mask: UInt64, handle: [UInt8], name: String, version: UInt8 = 3, infoType: UInt8 = 2, handleBytes: UInt32? = nil) -> [UInt8] {
            var info: [UInt8] = [infoType, 0, 0, 0] + [1, 0, 0, 0, 2, 0, 0, 0] // header, fsid
            info += withUnsafeBytes(of: (handleBytes ?? UInt32(handle.count)).littleEndian, Array.init) + [1, 0, 0, 0] + handle + Array(name.utf8) + [0]
            while info.count % 4 != 0 { info.append(0) }
            info[2] = UInt8(info.count & 0xff); info[3] = UInt8(info.count >> 8)
            let length = UInt32(24 + info.count)
            var meta = withUnsafeBytes(of: length.littleEndian, Array.init) + [version, 0, 24, 0]
            meta += withUnsafeBytes(of: mask.littleEndian, Array.init) + withUnsafeBytes(of: Int32(-1).littleEndian, Array.init) + [0x39, 0x30, 0, 0]
            return meta + info
        }
        let created = event(mask: 0x100, handle: [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x11, 0x22], name: "su")
        let moved = event(mask: 0x80 | 0x4000_0000, handle: [1, 2, 3, 4, 5, 6, 7, 8], name: "tree")
        let overflow: [UInt8] = [24, 0, 0, 0, 3, 0, 24, 0] + withUnsafeBytes(of: UInt64(0x4000).littleEndian, Array.init) + [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]
        let parsed = (created + moved + overflow).withUnsafeBytes(parseFanotifyEvents)
        #expect(parsed.count == 3)
        #expect(parsed.first == FanotifyEvent(mask: 0x100, fsid: 0x0000_0002_0000_0001, directory: [8, 0, 0, 0, 1, 0, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x11, 0x22], name: "su"))
        #expect(parsed.dropFirst().first?.isDirectory == true && parsed.dropFirst().first?.name == "tree")
        #expect(parsed.last?.isOverflow == true && parsed.last?.directory == [])
        // Cut short: what fits is read; the cut event is not.
        #expect((created + moved.dropLast(3)).withUnsafeBytes(parseFanotifyEvents).count == 1)
        // An unknown layout version ends the parse; a handle longer than its record is not read.
        #expect(event(mask: 0x100, handle: [1, 2], name: "a", version: 4).withUnsafeBytes(parseFanotifyEvents).isEmpty)
        let long = event(mask: 0x100, handle: [1, 2], name: "a", handleBytes: 4000).withUnsafeBytes(parseFanotifyEvents)
        #expect(long.count == 1 && long.first?.directory == [] && long.first?.name == "")
        // Other record types (an object's own handle, 1; a pidfd, 4) are passed over; a directory's handle without a name (3) is read.
        #expect(event(mask: 0x4, handle: [1, 2, 3, 4], name: "x", infoType: 4).withUnsafeBytes(parseFanotifyEvents).first?.directory == [])
        #expect(event(mask: 0x4, handle: [1, 2, 3, 4], name: "x", infoType: 1).withUnsafeBytes(parseFanotifyEvents).first?.directory == [])
        let unnamed = event(mask: 0x4, handle: [1, 2, 3, 4], name: "x", infoType: 3).withUnsafeBytes(parseFanotifyEvents).first
        #expect(unnamed?.directory == [4, 0, 0, 0, 1, 0, 0, 0, 1, 2, 3, 4] && unnamed?.name == "")
        // A zero length would loop for ever; an event length below the header ends the parse.
        var zero = created
        zero[0] = 0
        #expect(zero.withUnsafeBytes(parseFanotifyEvents).isEmpty)
        var rng = SeededGenerator(seed: 18)
        for _ in 0..<2000 {
            var bytes = created + moved
            for _ in 0..<4 { bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            _ = bytes.withUnsafeBytes(parseFanotifyEvents)
        }
    }

    @Test func theCollectorFollowsAWatchedTreeWithInotify() throws {
        let dir = try temporaryDirectory("hosttwin-files")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let conf = dir + "/etc", suidDir = dir + "/bin"
        for d in [conf + "/ssh", suidDir] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        try "PermitRootLogin no\nPort 22\n".write(toFile: conf + "/ssh/sshd_config", atomically: false, encoding: .utf8)
        try "s3cret\n".write(toFile: conf + "/db.conf", atomically: false, encoding: .utf8)
        chmod(conf + "/db.conf", 0o600)
        try Data([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2]).write(to: URL(fileURLWithPath: conf + "/blob"))
        try String(repeating: "x", count: 70_000).write(toFile: conf + "/big.txt", atomically: false, encoding: .utf8)
        #expect(mkfifo(conf + "/fifo", 0o644) == 0)
        #expect(symlink("ssh/sshd_config", conf + "/link") == 0)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: suidDir + "/helper"))
        try Data([4]).write(to: URL(fileURLWithPath: suidDir + "/plain"))
        chmod(suidDir + "/helper", 0o4755)

        let h = Harness(watch: [conf], suid: [suidDir])
        let (first, outcome) = try h.tick()
        #expect(outcome == .ok)
        // The SUID scan runs in the background; its result arrives at a later tick.
        var latest = try #require(first)
        for _ in 0..<1000 where !latest.contains(where: { $0.attributes["watch"] == "suid" }) {
            usleep(20_000)
            latest = try h.tick().0 ?? latest
        }
        let suid = latest.filter { $0.attributes["watch"] == "suid" }
        #expect(suid.map(\.key) == [suidDir + "/helper"])
        #expect(suid.first?.attributes["mode"] == "4755" && suid.first?.attributes["setuid"] == true)
        #expect(try suid.first?.attributes["sha256"] == .string(sha256sum(suidDir + "/helper")))
        let byPath = Dictionary(uniqueKeysWithValues: latest.map { ($0.key, $0.attributes) })
        let sshd = try #require(byPath[conf + "/ssh/sshd_config"])
        #expect(sshd["type"] == "file" && sshd["mode"] == "0644" && sshd["size"] == .int(27) && sshd["watch"] == "config")
        #expect(sshd["content"] == "PermitRootLogin no\nPort 22\n")
        #expect(try sshd["sha256"] == .string(sha256sum(conf + "/ssh/sshd_config")))
        // Not readable by others: its text is the sensitive attribute the policy seals.
        #expect(byPath[conf + "/db.conf"]?["secret_content"] == "s3cret\n" && byPath[conf + "/db.conf"]?["content"] == nil)
        #expect(try byPath[conf + "/blob"]?["content"] == nil && byPath[conf + "/blob"]?["sha256"] == .string(sha256sum(conf + "/blob")))
        #expect(try byPath[conf + "/big.txt"]?["content"] == nil && byPath[conf + "/big.txt"]?["sha256"] == .string(sha256sum(conf + "/big.txt")))
        #expect(byPath[conf + "/fifo"]?["type"] == "fifo" && byPath[conf + "/fifo"]?["sha256"] == nil)
        #expect(byPath[conf + "/link"]?["type"] == "symlink" && byPath[conf + "/link"]?["target"] == "ssh/sshd_config")
        #expect(byPath[conf + "/ssh"]?["type"] == "dir")
        #expect(byPath.count == 9, "\(byPath.keys.sorted())")

        // Nothing changed: nothing is set (the kind keeps its state).
        #expect(try h.tick().0 == nil)

        // A change is seen at the next tick through inotify (the next walk is 10 minutes away).
        try "PermitRootLogin yes\nPort 22\n".write(toFile: conf + "/ssh/sshd_config", atomically: true, encoding: .utf8)
        chmod(conf + "/ssh/sshd_config", 0o640)
        try FileManager.default.createDirectory(atPath: conf + "/new.d", withIntermediateDirectories: false)
        try "a=1\n".write(toFile: conf + "/new.d/a.conf", atomically: false, encoding: .utf8)
        try FileManager.default.removeItem(atPath: conf + "/blob")
        let second = Dictionary(uniqueKeysWithValues: try #require(try h.tick().0).map { ($0.key, $0.attributes) })
        #expect(second[conf + "/ssh/sshd_config"]?["secret_content"] == "PermitRootLogin yes\nPort 22\n", "0640: no longer readable by others")
        #expect(second[conf + "/ssh/sshd_config"]?["mode"] == "0640")
        #expect(second[conf + "/new.d/a.conf"]?["content"] == "a=1\n")
        #expect(second[conf + "/blob"] == nil)

        // A file created in the new directory: its watch was added when the directory appeared.
        try "b=2\n".write(toFile: conf + "/new.d/b.conf", atomically: false, encoding: .utf8)
        #expect(try h.tick().0?.contains { $0.key == conf + "/new.d/b.conf" && $0.attributes["content"] == "b=2\n" } == true)
        try FileManager.default.removeItem(atPath: conf + "/new.d")
        let third = try #require(try h.tick().0)
        #expect(!third.contains { $0.key.hasPrefix(conf + "/new.d") })

    }

    /// Without inotify a change waits for the next walk (every minute), and is seen then.
    @Test func withoutInotifyTheWalkFindsChanges() throws {
        let dir = try temporaryDirectory("hosttwin-files-walk")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "a\n".write(toFile: dir + "/x.conf", atomically: false, encoding: .utf8)
        let h = Harness(watch: [dir], suid: [])
        let collector = FileCollector(inotify: false)
        func tick(_ advance: Int64 = 1000) throws -> [Entity]? {
            h.t += advance
            var ctx = CollectContext(paths: HostPaths(), reader: h.reader, config: h.config, observation: Observation(timestamp: h.t))
            _ = try collector.collect(&ctx)
            return ctx.observation.entities[.files]
        }
        #expect(try tick()?.count == 2)
        try "b\n".write(toFile: dir + "/x.conf", atomically: true, encoding: .utf8)
        #expect(try tick() == nil, "no inotify: not seen before the walk")
        let walked = try #require(try tick(60_000))
        #expect(walked.contains { $0.key == dir + "/x.conf" && $0.attributes["content"] == "b\n" })
    }

    /// Hostile trees: a walk is bounded, paths that vanish mid-walk and unreadable files are skipped, a name
    /// with newlines or invalid UTF-8 does not break anything.
    @Test func oddEntriesDoNotBreakTheCollector() throws {
        let dir = try temporaryDirectory("hosttwin-files-odd")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "x\n".write(toFile: dir + "/name\nwith newline", atomically: false, encoding: .utf8)
        let fd = open(dir + "/bad-\u{FFFD}", O_CREAT | O_WRONLY, 0o644)
        close(fd)
        let h = Harness(watch: [dir, dir + "/missing"], suid: [dir + "/missing-too"])
        let (entities, outcome) = try h.tick()
        #expect(outcome == .ok)
        #expect(entities?.contains { $0.key == dir + "/name\nwith newline" } == true)
        #expect(entities?.contains { $0.key == dir + "/missing" } == false)
    }

    /// The SUID scan keeps to its CPU share: every 15 minutes while a scan is cheap, longer when it is not,
    /// never longer than six hours.
    @Test func theSUIDScanWaitsLongerWhenItCostsMore() {
        #expect(FileCollector.suidScanInterval(cpuSeconds: 0) == 900_000)
        #expect(FileCollector.suidScanInterval(cpuSeconds: 0.1) == 900_000)
        #expect(FileCollector.suidScanInterval(cpuSeconds: 1.04) == 5_200_000)
        #expect(FileCollector.suidScanInterval(cpuSeconds: 100) == 6 * 3_600_000)
        #expect(FileCollector.suidScanInterval(cpuSeconds: .nan) == 900_000)
        #expect(FileCollector.suidScanInterval(cpuSeconds: .infinity) == 900_000)
    }

    @Test func theSensitiveTestNamesSecrets() {
        #expect(FileCollector.isSensitive("/etc/shadow", mode: 0o100640))
        #expect(FileCollector.isSensitive("/etc/ssh/ssh_host_ed25519_key", mode: 0o100644))
        #expect(FileCollector.isSensitive("/etc/app/api-token.yml", mode: 0o100644))
        #expect(!FileCollector.isSensitive("/etc/passwd", mode: 0o100644))
        #expect(!FileCollector.isSensitive("/etc/ssh/sshd_config", mode: 0o100644))
    }

    /// The unified diff is one patch(1) applies: random edits of random texts, each patched back.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/patch"), "needs patch(1) (Debian: patch)"))
    func theUnifiedDiffIsOnePatchApplies() throws {
        let dir = try temporaryDirectory("hosttwin-diff")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = SeededGenerator(seed: 16)
        let words = ["Port 22", "PermitRootLogin no", "PasswordAuthentication yes", "# comment", "", "UsePAM yes", "X11Forwarding no", "Include /etc/ssh/sshd_config.d/*.conf"]
        for round in 0..<40 {
            let old = (0..<Int.random(in: 0...30, using: &rng)).map { _ in words.randomElement(using: &rng)! }
            var new = old
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                switch Int.random(in: 0...2, using: &rng) {
                case 0 where !new.isEmpty: new.remove(at: Int.random(in: 0..<new.count, using: &rng))
                case 1: new.insert(words.randomElement(using: &rng)! + " \(round)", at: Int.random(in: 0...new.count, using: &rng))
                default: if !new.isEmpty { new[Int.random(in: 0..<new.count, using: &rng)] = "changed \(round)" }
                }
            }
            let a = old.map { $0 + "\n" }.joined(), b = new.map { $0 + "\n" }.joined()
            let diff = TextDiff.unified(a, b, from: "a", to: "b")
            #expect(diff.isEmpty == (a == b))
            guard !diff.isEmpty else { continue }
            try a.write(toFile: dir + "/file", atomically: false, encoding: .utf8)
            let (status, _) = try tool("/usr/bin/patch", ["-s", "-o", dir + "/patched", dir + "/file"], input: diff)
            #expect(status == 0, "round \(round): patch refused\n\(a)=====\n\(diff)")
            #expect((try? String(contentsOfFile: dir + "/patched", encoding: .utf8)) == b, "round \(round)\n\(diff)")
            try? FileManager.default.removeItem(atPath: dir + "/patched")
        }
    }

    /// The twin's rollback: a file's old text comes back with its old mode, atomically; refused when the
    /// file changed since the twin last saw it, for paths not watched, and for what was never kept.
    @Test func aFileIsRestoredAsItWas() throws {
        let dir = try temporaryDirectory("hosttwin-restore")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let conf = dir + "/etc", data = dir + "/twin", path = conf + "/app.conf"
        try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
        try "workers = 4\nlisten = 127.0.0.1\n".write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, 0o640)
        let store = try TwinStore.open(dataDir: data)
        store.use(cipher: PolicyCipher(policy: DataPolicy(), keys: try KeyRing(dataDir: data, create: true)))
        let w = TwinWriter(store: store, policy: .testing)
        let t0 = TwinTime.nowMillis() - 20_000
        try w.begin(now: t0, interval: 1000)
        let h = Harness(watch: [conf], suid: [], t: t0 - 1000)
        func commit() throws {
            let (entities, _) = try h.tick()
            var o = Observation(timestamp: h.t)
            if let entities { o.set(.files, entities) }
            _ = try w.commit(o)
        }
        try commit()
        try "workers = 64\nlisten = 0.0.0.0\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o666)
        try commit()
        try w.finish(now: h.t + 1)

        // The old text, sealed at rest (0640: sensitive), opened with the keys.
        let plan = try FileRestore.plan(store, path: path, at: t0)
        #expect(plan.text == "workers = 4\nlisten = 127.0.0.1\n" && plan.mode == 0o640)
        #expect(plan.diff.contains("-workers = 64\n") && plan.diff.contains("+workers = 4\n"))
        // Sealed in the store's file: the plain text is not in it.
        for file in FileManager.default.enumerator(atPath: data)?.compactMap({ $0 as? String }) ?? [] {
            guard let raw = FileManager.default.contents(atPath: data + "/" + file) else { continue }
            #expect(raw.range(of: Data("listen = 127.0.0.1".utf8)) == nil, "\(file) holds the text in clear")
        }

        // Changed behind the twin's back: refused, nothing written.
        try "workers = 8\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(throws: TwinError.self) { try FileRestore.plan(store, path: path, at: t0) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "workers = 8\n")
        try "workers = 64\nlisten = 0.0.0.0\n".write(toFile: path, atomically: false, encoding: .utf8)

        try FileRestore.apply(try FileRestore.plan(store, path: path, at: t0))
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "workers = 4\nlisten = 127.0.0.1\n")
        var st = stat()
        #expect(stat(path, &st) == 0 && st.st_mode & 0o7777 == 0o640 && st.st_uid == getuid())
        #expect(try FileManager.default.contentsOfDirectory(atPath: conf) == ["app.conf"], "no temporary file left")

        // Not watched, never seen, relative or with `..`: refused.
        for bad in ["/usr/bin/su", conf + "/nope.conf", "etc/app.conf", conf + "/../etc/app.conf"] {
            #expect(throws: TwinError.self, "\(bad)") { try FileRestore.plan(store, path: bad, at: t0) }
        }
    }
}
