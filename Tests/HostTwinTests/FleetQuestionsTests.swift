import Foundation
import Testing
import TwinAnalytics
import TwinCore
import TwinQuery
import TwinSecurity
import TwinServer
@testable import TwinRuntime
@testable import TwinStorage

/// The fleet's questions on known twins: the dependency graph across hosts, how two hosts differ, and
/// where a job fits.
@Suite struct FleetQuestionsTests {
    static func version(_ host: String, _ kind: EntityKind, _ key: String, _ a: [String: AttributeValue]) -> EntityVersion {
        var attributes = a
        attributes["host"] = .string(host)
        return EntityVersion(kind: kind, key: host + "/" + key, attributes: attributes, validFrom: 0, validTo: nil)
    }

    static func listener(_ host: String, _ address: String, _ port: Int64, _ process: String) -> EntityVersion {
        version(host, .listeningPorts, "tcp/\(address):\(port)", ["protocol": "tcp", "family": "inet", "address": .string(address), "port": .int(port), "process": .string(process), "pid": 10])
    }

    static func connection(_ host: String, _ local: String, _ lport: Int64, _ remote: String, _ rport: Int64, _ process: AttributeValue) -> EntityVersion {
        version(host, .connections, "tcp/\(local):\(lport)/\(remote):\(rport)", ["protocol": "tcp", "family": "inet", "local_address": .string(local), "local_port": .int(lport),
                                                                             "remote_address": .string(remote), "remote_port": .int(rport), "state": "established", "process": process])
    }

    /// web-1 talks to db-1's postgres twice (both twins hold each connection), to itself over loopback, and
    /// to an outside API; an outside client connects to web-1's nginx; an address two hosts claim stays
    /// unresolved.
    @Test func dependencyGraphAcrossHosts() {
        let fleet = FleetState([
            Self.listener("web-1", "0.0.0.0", 443, "nginx"),
            Self.listener("web-1", "127.0.0.1", 6379, "redis-server"),
            Self.listener("db-1", "0.0.0.0", 5432, "postgres"),
            Self.connection("web-1", "10.0.0.5", 40001, "10.0.0.9", 5432, "app"),
            Self.connection("web-1", "10.0.0.5", 40002, "10.0.0.9", 5432, "app"),
            Self.connection("db-1", "10.0.0.9", 5432, "10.0.0.5", 40001, "postgres"),
            Self.connection("db-1", "10.0.0.9", 5432, "10.0.0.5", 40002, "postgres"),
            Self.connection("web-1", "127.0.0.1", 50000, "127.0.0.1", 6379, "app"),
            Self.connection("web-1", "127.0.0.1", 6379, "127.0.0.1", 50000, "redis-server"),
            Self.connection("web-1", "10.0.0.5", 41000, "198.51.100.7", 443, .null),
            Self.connection("web-1", "10.0.0.5", 443, "203.0.113.50", 61000, "nginx"),
            Self.connection("db-1", "172.17.0.1", 3000, "172.17.0.2", 80, "curl"),
            Self.connection("web-1", "172.17.0.1", 3001, "172.17.0.2", 80, "curl"),
        ])
        let g = DependencyGraph.build(fleet)
        let edges = Set(g.edges.map { "\($0.from) -> \($0.to) ×\($0.connections)" })
        #expect(edges == [
            "web-1:app -> db-1:5432:postgres ×2",
            "web-1:app -> web-1:6379:redis-server ×1",
            "web-1:? -> 198.51.100.7:443 ×1",
            "203.0.113.50 -> web-1:443:nginx ×1",
            "db-1:curl -> 172.17.0.2:80 ×1",
            "web-1:curl -> 172.17.0.2:80 ×1",
        ], "\(edges)")
        #expect(g.nodes.first { $0.id == "db-1:5432:postgres" }?.role == "service")
        #expect(g.nodes.first { $0.id == "203.0.113.50" }?.role == "external")
    }

    /// A relay whose policy hashes peer addresses names each connection's peer first (`remote_host`, from
    /// the fleet's addresses), so the graph upstream still resolves web-1 → db-1; without it the hashed
    /// peer is an outside node.
    @Test func peersAreNamedBeforeAPolicyHashesTheirAddresses() throws {
        let dir = try temporaryDirectory("hosttwin-peers")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keys = try KeyRing(dataDir: dir, create: true)
        let policy = try DataPolicy.parse("hash sensitive\n")
        let db = [Self.listener("db-1", "0.0.0.0", 5432, "postgres"), Self.connection("db-1", "10.0.0.9", 5432, "10.0.0.5", 40001, "postgres")]
        // web-1's batch as its relay forwards it: keys and attributes without the host.
        let web = [Self.connection("web-1", "10.0.0.5", 40001, "10.0.0.9", 5432, "app"), Self.connection("web-1", "127.0.0.1", 50000, "127.0.0.1", 6379, "app")]
            .map { v in Entity(kind: v.kind, key: String(v.key.dropFirst("web-1/".count)), attributes: v.attributes.filter { $0.key != "host" }) }
        let book = FleetAddressBook()
        book.learn(upstream: DependencyGraph.addressOwners(FleetState(db + [Self.connection("web-1", "10.0.0.5", 40001, "10.0.0.9", 5432, "app")])))
        func graphUpstream(annotated: Bool) -> Set<String> {
            var opened = web
            if annotated { book.annotate(&opened, policy: policy, localHost: "web-1") }
            var closed: [(kind: EntityKind, key: String)] = []
            policy.forwarding(opened: &opened, closed: &closed, keys: keys)
            let upstream = opened.map { Self.version("web-1", $0.kind, $0.key, $0.attributes) } + db + [Self.listener("web-1", "127.0.0.1", 6379, "redis-server")]
            return Set(DependencyGraph.build(FleetState(upstream)).edges.map { "\($0.from) -> \($0.to)" })
        }
        let named = graphUpstream(annotated: true)
        #expect(named.contains("web-1:app -> db-1:5432:postgres") && named.contains("web-1:app -> web-1:6379:redis-server"), "\(named)")
        let blind = graphUpstream(annotated: false)
        #expect(!blind.contains("web-1:app -> db-1:5432:postgres"), "\(blind)")
        // The address itself left hashed: nothing readable upstream.
        var opened = web
        book.annotate(&opened, policy: policy, localHost: "web-1")
        var closed: [(kind: EntityKind, key: String)] = []
        policy.forwarding(opened: &opened, closed: &closed, keys: keys)
        #expect(!opened.contains { $0.key.contains("10.0.0.9") || $0.attributes["remote_address"]?.description == "10.0.0.9" })
    }

    /// A hub's store of two known hosts over three hours at 1-minute ticks: `big` (8 cores, 1 busy, 30 GiB
    /// available, nginx on 443, openssl 3.0.11) and `small` (2 cores, 1.5 busy, 1 GiB available and
    /// falling, openssl 3.0.9, no web server, under memory pressure, /data filling).
    static func twoHosts(_ dir: String, now: Int64) throws -> TwinStore {
        let store = try TwinStore.open(dataDir: dir)
        let w = TwinWriter(store: store, policy: .testing)
        let start = now - 3 * 3_600_000
        try w.begin(now: start - 1, interval: 60_000)
        for i in 0..<180 {
            let t = start + Int64(i) * 60_000
            var o = Observation(timestamp: t)
            for (host, cores, busy) in [("big", 8, 1.0), ("small", 2, 1.5)] {
                for c in 0..<cores {
                    let share = busy / Double(cores)
                    o.add("node_cpu_seconds_total", Labels(["cpu": "\(c)", "host": host, "mode": "idle"]), Double(i) * 60 * (1 - share), .counter)
                    o.add("node_cpu_seconds_total", Labels(["cpu": "\(c)", "host": host, "mode": "user"]), Double(i) * 60 * share, .counter)
                }
                let gib: Double = 1_073_741_824
                let available: Double = host == "big" ? 30 * gib : gib - Double(i) * 1_000_000
                o.add("node_memory_MemAvailable_bytes", Labels(["host": host]), available)
                o.add("node_memory_MemTotal_bytes", Labels(["host": host]), host == "big" ? 32 * gib : 4 * gib)
                o.add("node_load1", Labels(["host": host]), host == "big" ? 1 : 1.5)
                // small: memory pressure 30 % of the time and /data filling 100 MB a minute from 50 GB.
                o.add("node_pressure_memory_waiting_seconds_total", Labels(["host": host]), host == "big" ? 0 : Double(i) * 60 * 0.3, .counter)
                o.add("node_filesystem_avail_bytes", Labels(["device": "/dev/sdb1", "fstype": "ext4", "host": host, "mountpoint": "/data"]),
                      host == "big" ? 400e9 : 50e9 - Double(i) * 100e6)
            }
            o.set(.host, [
                version("big", .host, "host", ["hostname": "big", "kernel": "6.1.0-18-amd64", "cpu_count": 8]),
                version("small", .host, "host", ["hostname": "small", "kernel": "6.1.0-13-amd64", "cpu_count": 2]),
            ].map { Entity(kind: $0.kind, key: $0.key, attributes: $0.attributes) })
            o.set(.packages, [
                version("big", .packages, "openssl:amd64", ["name": "openssl", "architecture": "amd64", "version": "3.0.11-1"]),
                version("small", .packages, "openssl:amd64", ["name": "openssl", "architecture": "amd64", "version": "3.0.9-1"]),
                version("big", .packages, "nginx:amd64", ["name": "nginx", "architecture": "amd64", "version": "1.22.1-9"]),
                version("big", .packages, "bash:amd64", ["name": "bash", "architecture": "amd64", "version": "5.2.15-2"]),
                version("small", .packages, "bash:amd64", ["name": "bash", "architecture": "amd64", "version": "5.2.15-2"]),
            ].map { Entity(kind: $0.kind, key: $0.key, attributes: $0.attributes) })
            o.set(.listeningPorts, [listener("big", "0.0.0.0", 443, "nginx"), listener("big", "0.0.0.0", 22, "sshd"), listener("small", "0.0.0.0", 22, "sshd")]
                .map { Entity(kind: $0.kind, key: $0.key, attributes: $0.attributes) })
            try w.commit(o)
        }
        try w.finish(now: now)
        return store
    }

    @Test func compareAndHeadroomOnKnownHosts() throws {
        let dir = try temporaryDirectory("hosttwin-fleet-questions")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let now = TwinTime.nowMillis() / 60_000 * 60_000
        let store = try Self.twoHosts(dir, now: now)
        let at = now - 60_000
        let engine = PromQLEngine(source: StoreSampleSource(store: store))

        let fleet = FleetState(try store.state(at: at))
        let c = HostComparison.compare(fleet, "big", "small", profile: try HostComparison.profile(engine: engine, at: at, left: "big", right: "small", localName: "local"))
        let differences = Set(c.differences.map { "\($0.kind) \($0.item) \($0.left ?? "-") \($0.right ?? "-")" })
        #expect(differences == [
            "host cpu_count 8 2", "host kernel 6.1.0-18-amd64 6.1.0-13-amd64",
            "packages openssl:amd64 3.0.11-1 3.0.9-1", "packages nginx:amd64 1.22.1-9 -",
            "listening_ports tcp/443 nginx -",
        ], "\(differences)")
        #expect(c.alike == ["host": 0, "packages": 1, "services": 0, "listening_ports": 1])
        let cpu = try #require(c.profile.first { $0.resource == "cpu busy cores" })
        #expect(abs((cpu.left ?? 0) - 1) < 0.05 && abs((cpu.right ?? 0) - 1.5) < 0.05, "\(cpu)")
        let memory = try #require(c.profile.first { $0.resource == "memory used fraction" })
        #expect(abs((memory.left ?? 0) - 2.0 / 32) < 0.01, "\(memory)")

        let hosts = try Headroom.hosts(engine: engine, now: now, history: 3 * 3_600_000, horizon: 24 * 3_600_000, localName: "local")
        #expect(hosts.map(\.host) == ["big", "small"])
        let big = try #require(hosts.first), small = try #require(hosts.last)
        #expect(big.cores == 8 && abs(big.peakBusyCores - 1) < 0.2 && big.minAvailableBytes > 29 * Double(1 << 30), "\(big)")
        // small's memory falls 1 MB a minute: within a day it is forecast near 1 GiB − 1.4 GB, i.e. none.
        #expect(small.cores == 2 && small.peakBusyCores >= 1.4 && small.minAvailableBytes < 0.5 * Double(1 << 30), "\(small)")
        let ranked = Headroom.rank(hosts, cpu: 2, memory: 4 * Double(1 << 30))
        #expect(ranked.map(\.host) == ["big", "small"] && ranked[0].fits && !ranked[1].fits)
        #expect(abs(ranked[0].score - 3.5) < 0.3, "big fits the job (7 spare cores / 2) about 3.5 times: \(ranked[0].score)")
    }

    /// An upstream hub's address map is taken only when every entry is a non-empty address and name of
    /// at most 255 bytes, and it holds at most 65,536 of them; otherwise the previous map stays.
    @Test func anUpstreamAddressMapIsCheckedBeforeItIsLearnt() {
        let book = FleetAddressBook()
        #expect(book.learn(upstream: ["10.0.0.9": "db-1"]))
        #expect(!book.learn(upstream: ["": "db-1"]))
        #expect(!book.learn(upstream: ["10.0.0.9": String(repeating: "x", count: 256)]))
        #expect(!book.learn(upstream: Dictionary(uniqueKeysWithValues: (0...FleetAddressBook.maxUpstream).map { ("10.\($0 >> 16).\(($0 >> 8) & 255).\($0 & 255)", "h") })))
        let policy = try! DataPolicy.parse("hash sensitive\n")
        var opened = [Self.connection("web-1", "10.0.0.5", 40001, "10.0.0.9", 5432, "app")].map { Entity(kind: $0.kind, key: $0.key, attributes: $0.attributes) }
        book.annotate(&opened, policy: policy, localHost: "web-1")
        #expect(opened[0].attributes["remote_host"]?.description == "db-1", "the first map still names the peer: \(opened[0].attributes)")
    }

    /// An upstream's handshake claiming more of a host's epoch than this relay applied is counted only that
    /// far (the outbox would otherwise be skipped and pruned past what was sent); another epoch, a host this
    /// hub does not hold, and an honest claim are left as they are.
    @Test func anUpstreamsClaimIsBoundedByWhatTheRelayApplied() {
        let claimed: [String: (epoch: UInt64, through: UInt64)] = ["web-1": (7, UInt64(Int64.max)), "web-2": (8, 900), "db-1": (9, 40), "far": (1, 5)]
        let own = [RemoteCursor(host: "web-1", epoch: 7, appliedThrough: 120), RemoteCursor(host: "web-2", epoch: 3, appliedThrough: 10),
                   RemoteCursor(host: "db-1", epoch: 9, appliedThrough: 50)]
        let (held, cut) = RelayUplink.bounded(claimed, by: own)
        #expect(held["web-1"]! == (7, 120))
        #expect(held["web-2"]! == (8, 900))
        #expect(held["db-1"]! == (9, 40))
        #expect(held["far"]! == (1, 5))
        #expect(cut.count == 1 && cut[0].contains("web-1"))
    }

    /// Twenty minutes of a host with 16 GiB available (noisy, no trend) and a day's horizon: the bounds
    /// cover only as far as the history reaches back, so the host keeps its memory (the bounds stretched
    /// over the whole day reached zero, and no host fitted anything).
    @Test func headroomWithMinutesOfHistoryKeepsWhatIsThere() throws {
        let dir = try temporaryDirectory("hosttwin-headroom-short")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let now = TwinTime.nowMillis() / 60_000 * 60_000
        let store = try TwinStore.open(dataDir: dir)
        let w = TwinWriter(store: store, policy: .testing)
        let start = now - 20 * 60_000
        try w.begin(now: start - 1, interval: 10_000)
        var rng: UInt64 = 7
        for i in 0..<120 {
            var o = Observation(timestamp: start + Int64(i) * 10_000)
            rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let noise = Double(rng >> 40) / Double(1 << 24) - 0.5 // ±0.5
            for c in 0..<4 {
                o.add("node_cpu_seconds_total", Labels(["cpu": "\(c)", "host": "fresh", "mode": "idle"]), Double(i) * 10 * 0.75, .counter)
                o.add("node_cpu_seconds_total", Labels(["cpu": "\(c)", "host": "fresh", "mode": "user"]), Double(i) * 10 * 0.25, .counter)
            }
            o.add("node_memory_MemAvailable_bytes", Labels(["host": "fresh"]), 16 * 1_073_741_824 + noise * 400e6)
            try w.commit(o)
        }
        try w.finish(now: now)
        let engine = PromQLEngine(source: StoreSampleSource(store: store))
        let host = try #require(try Headroom.hosts(engine: engine, now: now, history: 7 * 86_400_000, horizon: 86_400_000, localName: "local").first)
        #expect(host.boundsCover >= 10 * 60_000 && host.boundsCover <= 20 * 60_000, "\(host)")
        #expect(host.minAvailableBytes > 14 * 1_073_741_824, "\(host)")
        #expect(host.peakBusyCores > 0.8 && host.peakBusyCores < 2.5, "\(host)")
        #expect(Headroom.rank([host], cpu: 1, memory: 4 * 1_073_741_824).first?.fits == true)
    }

    /// Failover warnings: the host under pressure with a filesystem filling is flagged with that evidence;
    /// the steady one is not.
    @Test func failoverWarningsFlagTheHostHeadingForTrouble() throws {
        let dir = try temporaryDirectory("hosttwin-fleet-health")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let now = TwinTime.nowMillis() / 60_000 * 60_000
        let store = try Self.twoHosts(dir, now: now)
        let health = try FleetHealth.scan(store: store, now: now - 60_000)
        let small = try #require(health["small"]), big = try #require(health["big"])
        #expect(small.flagged && Set(small.warnings.map(\.kind)).isSuperset(of: ["sustained pressure", "filesystem filling"]), "\(small.warnings)")
        #expect(small.warnings.first { $0.kind == "filesystem filling" }?.subject == "/data")
        #expect(!big.flagged, "\(big.warnings)")
    }
}

/// `bench placement` on a known fleet: a host at a steady 90 % and one at 10 %. Round-robin puts every
/// other job on the busy host and overloads it; headroom sees the busy host's forecast leaves 10 % and
/// overloads nothing.
@Suite struct PlacementBenchTests {
    @Test func headroomKeepsJobsOffTheBusyHost() throws {
        let dir = try temporaryDirectory("hosttwin-placement")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let folder = dir + "/data/realAWSCloudwatch"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (name, level) in [("busy", 90.0), ("idle", 10.0)] {
            let rows = (0..<4032).map { _ in "2014-02-14 00:00:00,\(level)" }.joined(separator: "\n")
            try ("timestamp,value\n" + rows + "\n").write(toFile: folder + "/ec2_cpu_utilization_\(name).csv", atomically: true, encoding: .utf8)
        }
        let r = try #require(try EndToEndTests.json(["bench", "placement", "--nab", dir, "--jobs-per-hour", "0.5", "--json"]) as? [String: Any])
        let outcomes = try #require(r["outcomes"] as? [[String: Any]])
        func overload(_ policy: String) -> Int { (outcomes.first { $0["policy"] as? String == policy }?["overload_minutes"] as? Int) ?? -1 }
        #expect((r["jobs"] as? Int ?? 0) > 20)
        #expect(overload("headroom") == 0, "\(outcomes)")
        #expect(overload("round-robin") > 0, "\(outcomes)")
    }
}
