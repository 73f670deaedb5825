import Foundation
import Testing
import TwinCore
import TwinQuery
import TwinRuntime
import TwinServer
@testable import TwinStorage
@testable import TwinSync

/// Prometheus remote_write 1.0, out and in (issue 17): the wire codec, a hub storing what a Prometheus
/// sends (and refusing what it must), and the sender against real receivers — Prometheus 2.42 and
/// VictoriaMetrics 1.79 from Debian, started on loopback — including a receiver that was down.
@Suite(.serialized) struct RemoteWriteTests {
    // MARK: The codec

    @Test func snappyBlocksRoundTripAndBadOnesAreRefused() throws {
        var rng = SeededGenerator(seed: 17)
        for n in [0, 1, 100, 70_000] {
            let bytes = (0..<n).map { i in UInt8(truncatingIfNeeded: i % 7 == 0 ? Int(rng.next() & 0xff) : i / 13) }
            #expect(try Snappy.uncompress(Snappy.compress(bytes), limit: 1 << 20) == bytes)
        }
        #expect(throws: SnappyError.self) { try Snappy.uncompress([], limit: 100) }
        #expect(throws: SnappyError.self) { try Snappy.uncompress([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], limit: 100) } // a length header that never ends
        let big = Snappy.compress([UInt8](repeating: 7, count: 5_000))
        #expect(throws: SnappyError.self) { try Snappy.uncompress(big, limit: 4_999) } // refused before allocating
        var cut = Snappy.compress(Array("a sentence that compresses a little, a sentence that compresses".utf8))
        cut.removeLast(5)
        #expect(throws: SnappyError.self) { try Snappy.uncompress(cut, limit: 1 << 20) }
    }

    @Test func requestsRoundTripAndInvalidSeriesAreRefused() throws {
        let series = [
            RemoteWriteCodec.Series(metric: "node_load1", labels: [Label("job", "node"), Label("instance", "web-1:9100")], t: [1000, 2000], v: [0.5, 0.75]),
            RemoteWriteCodec.Series(metric: "node_cpu_seconds_total", labels: [Label("cpu", "0"), Label("mode", "idle")], t: [1000], v: [12.5]),
        ]
        let body = RemoteWriteCodec.encode(series, types: ["node_cpu_seconds": .counter, "node_load1": .gauge])
        let decoded = try RemoteWriteCodec.decode(body)
        #expect(decoded.refused == 0 && decoded.types == ["node_cpu_seconds": .counter, "node_load1": .gauge])
        // Labels come back sorted, without __name__.
        #expect(decoded.series.map(\.metric) == ["node_load1", "node_cpu_seconds_total"])
        #expect(decoded.series[0].labels == [Label("instance", "web-1:9100"), Label("job", "node")])
        #expect(decoded.series[0].t == [1000, 2000] && decoded.series[0].v == [0.5, 0.75])

        // Series a receiver must refuse, beside a good one and Prometheus' staleness marker.
        var request = Prometheus_WriteRequest()
        func ts(_ labels: [(String, String)], _ samples: [(Int64, Double)]) -> Prometheus_TimeSeries {
            Prometheus_TimeSeries.with { t in
                t.labels = labels.map { l in Prometheus_Label.with { $0.name = l.0; $0.value = l.1 } }
                t.samples = samples.map { s in Prometheus_Sample.with { $0.timestamp = s.0; $0.value = s.1 } }
            }
        }
        request.timeseries = [
            ts([("__name__", "ok"), ("instance", "a")], [(1, 1), (2, Double(bitPattern: RemoteWriteCodec.staleNaN)), (3, .nan)]),
            ts([("instance", "a")], [(1, 1)]),
            ts([("__name__", "1bad"), ("instance", "a")], [(1, 1)]),
            ts([("__name__", "x"), ("bad-label", "a")], [(1, 1)]),
            ts([("__name__", "x"), ("a", "1"), ("a", "2")], [(1, 1)]),
        ]
        let mixed = try RemoteWriteCodec.decode(Snappy.compress(try request.serializedBytes()))
        #expect(mixed.series.count == 1 && mixed.refused == 4 && mixed.staleMarkers == 1)
        #expect(mixed.series[0].t == [1, 3] && mixed.series[0].v[1].isNaN, "a NaN is a value; only the staleness marker is dropped")
        #expect(mixed.refusals.contains { $0.contains("no __name__") } && mixed.refusals.contains { $0.contains("repeated") })

        #expect(throws: RemoteWriteError.self) { try RemoteWriteCodec.decode(Array("not snappy".utf8)) }
        #expect(throws: RemoteWriteError.self) { try RemoteWriteCodec.decode(Snappy.compress([0x0a, 0xff, 0xff, 0xff, 0x0f])) }
    }

    @Test func theHostIsTheInstanceWithoutItsPort() {
        func host(_ v: String) -> String? { HubIngest.remoteWriteHost([Label("instance", v)], label: "instance") }
        #expect(host("web-1:9100") == "web-1")
        #expect(host("10.0.0.5:9100") == "10.0.0.5")
        #expect(host("[::1]:9100") == "::1")
        #expect(host("web-1") == "web-1")
        #expect(host("fe80::1") == "fe80::1", "an IPv6 address without brackets has no port")
        #expect(host("web-1:http") == "web-1:http")
        #expect(HubIngest.remoteWriteHost([Label("job", "node")], label: "instance") == nil)
        #expect(HubIngest.remoteWriteHost([Label("node", "db-2")], label: "node") == "db-2")
    }

    /// Bad `--remote-write` options are refused before `run` or `serve` opens anything: no data directory is left behind.
    @Test func badOptionsAreRefusedBeforeTheStoreIsOpened() throws {
        let dir = try temporaryDirectory("hosttwin-rw-options")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (command, args, says) in [
            ("run", ["--remote-write", "ftp://127.0.0.1:1/write"], "http"),
            ("run", ["--remote-write", "http://user:pw@127.0.0.1:1/api/v1/write"], "credentials"),
            ("serve", ["--remote-write", "http://127.0.0.1:1/a", "--remote-write", "http://127.0.0.1:1/a"], "twice"),
            ("run", ["--remote-write", "http://127.0.0.1:1/a", "--remote-write-shards", "0"], "1 to 64"),
            ("serve", ["--remote-write-ca", "/nonexistent"], "need --remote-write URL"),
            ("serve", ["--hub-name", "a/../b"], "--hub-name a/../b: use up to 64"),
            ("serve", ["--hub-name", String(repeating: "h", count: 65)], "use up to 64"),
            ("serve", ["--hub-name", "b"], "give --store URL"),
        ] {
            let data = dir + "/\(command)-\(says.count)"
            let r = try EndToEndTests.cli([command, "--data-dir", data, "--listen", "127.0.0.1:0"] + args)
            #expect(r.status != 0 && r.stderr.contains(says), "\(command) \(args): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: data), "\(command) \(args) left \(data) behind")
        }
    }

    // MARK: In: a hub

    @Test func aHubStoresRemoteWrittenSeriesUnderTheirHost() throws {
        let dir = try temporaryDirectory("hosttwin-rw-in")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TwinStore.open(dataDir: dir)
        let writer = TwinWriter(store: store, policy: .testing)
        try writer.open()
        let hub = try HubIngest(writer: writer)
        var types: [String: MetricType] = [:]
        let t0: Int64 = 1_800_000_000_000
        func request(_ from: Int, _ n: Int) throws -> RemoteWriteCodec.Request {
            let ticks = (from..<from + n).map { t0 + Int64($0) * 15_000 }
            return try RemoteWriteCodec.decode(RemoteWriteCodec.encode([
                .init(metric: "node_load1", labels: [Label("instance", "web-1:9100"), Label("job", "node")], t: ticks, v: ticks.map { Double($0 % 7) }),
                .init(metric: "node_load1", labels: [Label("instance", "db-2:9100"), Label("job", "node")], t: ticks, v: ticks.map { Double($0 % 5) }),
                .init(metric: "up", labels: [Label("job", "node")], t: ticks, v: ticks.map { _ in 1 }),
            ], types: ["node_load1": .gauge]))
        }
        let first = try hub.applyRemoteWrite(try request(0, 10), hostLabel: "instance", types: &types, datacenter: "dc1")
        #expect(first.samples == 20 && first.refused == 1 && first.hosts == ["db-2", "web-1"])
        #expect(first.refusals.first?.contains("no instance label") == true)
        // Sent again (a retry) and overlapping: only the new samples are stored.
        let again = try hub.applyRemoteWrite(try request(5, 10), hostLabel: "instance", types: &types, datacenter: "dc1")
        #expect(again.samples == 10 && again.notNewer == 10)

        let key = SeriesKey("node_load1", Labels(["host": "web-1", "instance": "web-1:9100", "job": "node"]))
        let samples = try #require(try store.samples(key, from: t0, to: t0 + 1_000_000))
        #expect(samples.count == 15 && samples.map(\.0) == (0..<15).map { t0 + Int64($0) * 15_000 })
        #expect(try store.seriesCatalog().first { $0.key == key }?.type == .gauge)
        // Each host is a fleet host with the time of its newest sample, in the hub's datacenter.
        let cursors = try store.remoteCursors()
        #expect(cursors.map(\.host) == ["db-2", "web-1"])
        #expect(cursors.allSatisfy { $0.epoch == 0 && $0.lastTime == t0 + 14 * 15_000 && $0.datacenter == "dc1" })
        try writer.finish(now: TwinTime.nowMillis())
    }

    /// The route on a real hub process: tokens and roles, bodies that are not remote_write, and a good
    /// request queryable at once.
    @Test func theWriteRouteRefusesWhatItMust() throws {
        let dir = try temporaryDirectory("hosttwin-rw-route")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hubDir = dir + "/hub"
        _ = try EndToEndTests.cli(["token", "create", "--role", "admin", "--data-dir", hubDir])
        let relay = try FleetTests.token(hubDir, role: "relay")
        let reader = try FleetTests.token(hubDir, role: "reader")
        let port = try ServerTests.freePort()
        let serve = try ServerTests.start(["serve", "--data-dir", hubDir, "--listen", "127.0.0.1:\(port)", "--remote-write-host-label", "node"])
        defer { serve.terminate(); serve.waitUntilExit() }
        #expect(try EndToEndTests.eventually(20) { LoopbackHTTP.get(port: port, "/healthz")?.status == 200 })
        let now = TwinTime.nowMillis() / 1000 * 1000
        let body = RemoteWriteCodec.encode([
            .init(metric: "app_requests_total", labels: [Label("node", "edge-7"), Label("job", "app")], t: [now - 2000, now - 1000], v: [10, 12]),
            .init(metric: "app_requests_total", labels: [Label("job", "app")], t: [now - 1000], v: [1]),
        ])
        func post(_ token: String?, _ body: [UInt8], encoding: String = "snappy") -> (status: Int, body: String) {
            var headers = ["Content-Encoding": encoding]
            if let token { headers["Authorization"] = "Bearer \(token)" }
            let r = LoopbackHTTP.request(port: port, method: "POST", path: "/api/v1/write", contentType: "application/x-protobuf", headers: headers, body: body)
            return (r?.status ?? 0, r?.body ?? "")
        }
        #expect(post(nil, body).status == 401)
        #expect(post(reader, body).status == 403)
        #expect(post(relay, Array("garbage".utf8)).status == 400)
        #expect(post(relay, body, encoding: "gzip").status == 415)
        #expect(LoopbackHTTP.request(port: port, method: "GET", path: "/api/v1/write", headers: ["Authorization": "Bearer \(relay)"])?.status == 405)
        let mixed = post(relay, body)
        #expect(mixed.status == 400 && mixed.body.contains("1 series refused") && mixed.body.contains("no node label"), "\(mixed)")
        let good = RemoteWriteCodec.encode([.init(metric: "app_up", labels: [Label("node", "edge-7")], t: [now - 1000], v: [1])])
        #expect(post(relay, good).status == 204)
        #expect(serve.isRunning)
        // Stored under host edge-7, queryable with a reader token.
        let q = LoopbackHTTP.request(port: port, method: "GET", path: "/api/v1/query?query=\(ServerTests.q("app_requests_total"))&time=\(now / 1000)",
                                     headers: ["Authorization": "Bearer \(reader)"])
        #expect(q?.status == 200 && q?.body.contains(#""host":"edge-7""#) == true && q?.body.contains(#""12""#) == true, "\(String(describing: q))")
    }

    // MARK: Out: the sender against real receivers

    /// A receiver from Debian, started on loopback for a test.
    struct Receiver {
        var name: String
        var binary: String
        var port: Int
        var writePath: String
        var arguments: (_ dataDir: String, _ port: Int) -> [String]

        static let prometheus = "/usr/bin/prometheus"
        static let victoriaMetrics = "/usr/bin/victoria-metrics"

        static func all() throws -> [Receiver] {
            var out: [Receiver] = []
            if FileManager.default.isExecutableFile(atPath: prometheus) {
                out.append(Receiver(name: "Prometheus", binary: prometheus, port: try ServerTests.freePort(), writePath: "/api/v1/write") { dir, port in
                    ["--config.file=/dev/null", "--storage.tsdb.path=\(dir)", "--web.listen-address=127.0.0.1:\(port)", "--web.enable-remote-write-receiver"]
                })
            }
            if FileManager.default.isExecutableFile(atPath: victoriaMetrics) {
                out.append(Receiver(name: "VictoriaMetrics", binary: victoriaMetrics, port: try ServerTests.freePort(), writePath: "/api/v1/write") { dir, port in
                    ["-storageDataPath=\(dir)", "-httpListenAddr=127.0.0.1:\(port)", "-search.latencyOffset=0s", "-loggerLevel=ERROR"]
                })
            }
            return out
        }

        func start(dataDir: String) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = arguments(dataDir, port)
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }

        /// Every raw sample of series matching `selector` in `(from, to]`, by label set (without `__name__`'s
        /// value mixed in: it is a label like the others).
        func samples(_ selector: String, from: Int64, to: Int64) -> [String: [Int64: Double]]? {
            let path: String
            if name == "VictoriaMetrics" {
                path = "/api/v1/export?match[]=\(ServerTests.q(selector))&start=\(from / 1000)&end=\(to / 1000)"
                guard let r = LoopbackHTTP.get(port: port, path, timeout: 30), r.status == 200 else { return nil }
                var out: [String: [Int64: Double]] = [:]
                for line in r.body.split(separator: "\n") {
                    guard let o = ServerTests.json(String(line)) as [String: Any]?, let m = o["metric"] as? [String: String],
                          let ts = o["timestamps"] as? [NSNumber], let vs = o["values"] as? [NSNumber] else { continue }
                    for (t, v) in zip(ts, vs) where t.int64Value > from && t.int64Value <= to { out[RemoteWriteTests.key(m), default: [:]][t.int64Value] = v.doubleValue }
                }
                return out
            }
            let span = (to - from + 999) / 1000
            path = "/api/v1/query?query=\(ServerTests.q("\(selector)[\(span)s]"))&time=\(Double(to) / 1000)"
            return RemoteWriteTests.matrix(LoopbackHTTP.get(port: port, path, timeout: 30), from: from)
        }
    }

    static func key(_ labels: [String: String]) -> String {
        labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    /// A Prometheus-style matrix answer as samples by label set, those after `from` only.
    static func matrix(_ r: (status: Int, body: String)?, from: Int64) -> [String: [Int64: Double]]? {
        guard let r, r.status == 200, let data = ServerTests.json(r.body)["data"] as? [String: Any], let result = data["result"] as? [[String: Any]] else { return nil }
        var out: [String: [Int64: Double]] = [:]
        for s in result {
            guard let m = s["metric"] as? [String: String], let values = s["values"] as? [[Any]] else { continue }
            for pair in values {
                guard let t = (pair[0] as? NSNumber)?.doubleValue, let v = (pair[1] as? String).flatMap(Double.init) else { continue }
                let ms = Int64((t * 1000).rounded())
                if ms > from { out[key(m), default: [:]][ms] = v }
            }
        }
        return out
    }

    /// A store of this twin's kind with `ticks` one-second ticks ending now-ish: steady, counting and
    /// coming-and-going series.
    static func commitTicks(_ writer: TwinWriter, from first: Int64, count: Int) throws {
        for i in 0..<count {
            let t = first + Int64(i) * 1000
            var o = Observation(timestamp: t)
            o.add("rwtest_load", .empty, Double(i % 9) / 4)
            for cpu in 0..<3 { o.add("rwtest_cpu_seconds_total", Labels(["cpu": "\(cpu)"]), Double(t / 1000 - 1_700_000_000) * 0.25 + Double(cpu), .counter) }
            if (t / 1000) % 20 < 10 { o.add("rwtest_flapping", Labels(["pid": "\(t / 20_000)"]), Double(i)) }
            try writer.commit(o)
        }
    }

    @Test(.enabled(if: (try? Receiver.all().isEmpty == false) ?? false, "needs prometheus or victoria-metrics from Debian"))
    func everySampleArrivesEvenAfterTheReceiverWasDown() async throws {
        let dir = try temporaryDirectory("hosttwin-rw-out")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for receiver in try Receiver.all() {
            let store = try TwinStore.open(dataDir: dir + "/twin-" + receiver.name)
            let writer = TwinWriter(store: store, policy: .testing)
            let start = TwinTime.nowMillis() / 1000 * 1000 - 120_000
            try writer.begin(now: start - 1, interval: 1000)
            defer { try? writer.finish(now: TwinTime.nowMillis()) }
            let receiverDir = dir + "/" + receiver.name
            var process = try receiver.start(dataDir: receiverDir)
            defer { process.terminate(); process.waitUntilExit() }
            #expect(try EndToEndTests.eventually(30) { LoopbackHTTP.get(port: receiver.port, receiver.name == "Prometheus" ? "/-/ready" : "/health")?.status == 200 })
            var settings = RemoteWriteSender.Settings()
            settings.maxSamplesPerSend = 50 // many requests per round, over every shard
            settings.maxBackoff = .milliseconds(400)
            let sender = RemoteWriteSender(store: store, destination: try .init(url: "http://127.0.0.1:\(receiver.port)\(receiver.writePath)"),
                                           hub: false, settings: settings, logger: .init(label: "test"))
            let position = start - 1 // sent from the store's first tick on
            try store.saveRemoteWritePositions(destination: sender.destination.name, ["*": position])
            try Self.commitTicks(writer, from: start, count: 60)
            let first = try await sender.round(now: TwinTime.nowMillis())
            #expect(first.requests > 3 && first.dropped == 0 && first.positions[""] == start + 59_000, "\(first)")

            // The receiver goes down; the twin goes on; the sender retries until it is back.
            process.terminate()
            process.waitUntilExit()
            try Self.commitTicks(writer, from: start + 60_000, count: 60)
            let pending = Task { try await sender.round(now: TwinTime.nowMillis()) }
            try await Task.sleep(for: .seconds(3))
            process = try receiver.start(dataDir: receiverDir)
            let second = try await pending.value
            #expect(second.positions[""] == start + 119_000 && second.dropped == 0, "\(second)")

            // Every stored sample arrived, and nothing else.
            let stored = try Self.storedSamples(store, from: position, to: start + 119_000)
            var got: [String: [Int64: Double]]?
            _ = try EndToEndTests.eventually(30) {
                got = receiver.samples(#"{__name__=~"rwtest_.*"}"#, from: position, to: start + 119_000)
                return got == stored
            }
            #expect(stored.values.reduce(0) { $0 + $1.count } == 120 * 4 + 60)
            #expect(got == stored, "\(receiver.name) holds other samples than the twin: \(Self.difference(stored, got ?? [:]))")
        }
    }

    /// A hub sends every host's series, each host up to its applied cursor: two agents' ticks applied at a
    /// hub (one host further along than the other) arrive with their `host` and `instance` labels.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: Receiver.prometheus), "needs prometheus from Debian"))
    func aHubSendsEachHostUpToItsCursor() async throws {
        let dir = try temporaryDirectory("hosttwin-rw-hub")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let start = TwinTime.nowMillis() / 1000 * 1000 - 120_000
        let hubStore = try TwinStore.open(dataDir: dir + "/hub")
        let hubWriter = TwinWriter(store: hubStore, policy: .testing)
        try hubWriter.open()
        let hub = try HubIngest(writer: hubWriter)
        for (host, count) in [("web-1", 90), ("db-2", 60)] {
            let agent = try TwinStore.open(dataDir: dir + "/" + host)
            let w = TwinWriter(store: agent, policy: .testing)
            try w.begin(now: start - 1, interval: 1000)
            try Self.commitTicks(w, from: start, count: count)
            try w.finish(now: start + Int64(count) * 1000)
            let batch = try #require(try StoreBatches(store: agent, host: host).batch(from: 1, maxTicks: count))
            _ = try hub.apply(SyncCodec.encode(batch).bytes, from: host)
        }
        guard let receiver = try Receiver.all().first(where: { $0.name == "Prometheus" }) else { return }
        let process = try receiver.start(dataDir: dir + "/prom")
        defer { process.terminate(); process.waitUntilExit() }
        #expect(try EndToEndTests.eventually(30) { LoopbackHTTP.get(port: receiver.port, "/-/ready")?.status == 200 })
        let sender = RemoteWriteSender(store: hubStore, destination: try .init(url: "http://127.0.0.1:\(receiver.port)/api/v1/write"),
                                       hub: true, logger: .init(label: "test"))
        try hubStore.saveRemoteWritePositions(destination: sender.destination.name, ["*": start - 1])
        let round = try await sender.round(now: TwinTime.nowMillis())
        func flapping(_ n: Int) -> Int { (0..<Int64(n)).filter { (start / 1000 + $0) % 20 < 10 }.count }
        #expect(round.positions == ["web-1": start + 89_000, "db-2": start + 59_000] && round.samples == 90 * 4 + flapping(90) + 60 * 4 + flapping(60), "\(round)")
        var got: [String: [Int64: Double]]?
        _ = try EndToEndTests.eventually(30) {
            got = receiver.samples(#"{__name__="rwtest_load"}"#, from: start - 1, to: start + 89_000)
            return got?.count == 2
        }
        #expect(got?[Self.key(["__name__": "rwtest_load", "host": "web-1", "instance": "web-1", "job": "node"])]?.count == 90)
        #expect(got?[Self.key(["__name__": "rwtest_load", "host": "db-2", "instance": "db-2", "job": "node"])]?.count == 60)
        // Nothing new: the next round sends nothing and keeps the positions.
        let idle = try await sender.round(now: TwinTime.nowMillis())
        #expect(idle.samples == 0 && idle.positions.isEmpty)
        try hubWriter.finish(now: TwinTime.nowMillis())
    }

    /// The store's samples in `(from, to]` in the form the receivers answer: the Prometheus view's labels.
    static func storedSamples(_ store: TwinStore, from: Int64, to: Int64) throws -> [String: [Int64: Double]] {
        let view = ScrapeLabels().resolved(store)
        var out: [String: [Int64: Double]] = [:]
        for s in try store.seriesCatalog() where s.key.metric.hasPrefix("rwtest_") {
            var pairs = s.key.labels.pairs
            view.add(to: &pairs)
            var labels = Dictionary(uniqueKeysWithValues: pairs.map { ($0.name, $0.value) })
            labels["__name__"] = s.key.metric
            for (t, v) in try store.samples(s.key, from: from + 1, to: to) ?? [] { out[key(labels), default: [:]][t] = v }
        }
        return out
    }

    static func difference(_ a: [String: [Int64: Double]], _ b: [String: [Int64: Double]]) -> String {
        let keys = Set(a.keys).union(b.keys).sorted()
        return keys.compactMap { k in
            let x = a[k] ?? [:], y = b[k] ?? [:]
            guard x != y else { return nil }
            return "\(k): twin \(x.count) samples, receiver \(y.count); first differing \(Set(x.keys).symmetricDifference(y.keys).sorted().prefix(3))"
        }.prefix(5).joined(separator: "; ")
    }
}
