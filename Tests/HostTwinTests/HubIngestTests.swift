import Foundation
import Testing
import TwinCore
@testable import TwinStorage
import TwinSync
import TwinSecurity

/// A hub applying an agent's batches: the hub's twin of the host equals the agent's (samples and state
/// as of any time), batches applied twice change nothing, gaps and forged hosts are refused, and the
/// cursor survives a restart of the hub.
@Suite struct HubIngestTests {
    static let t0: Int64 = 1_800_000_000_000

    /// An agent store with `count` ticks of churn: steady series, a series that comes and goes, and
    /// processes that appear, change and disappear.
    static func agent(ticks count: Int, dir: String) throws -> TwinStore {
        let store = try TwinStore.open(dataDir: dir)
        let w = TwinWriter(store: store, policy: .testing)
        try w.begin(now: t0 - 1, interval: 1000)
        for i in 0..<count {
            var o = Observation(timestamp: t0 + Int64(i) * 1000)
            o.add("node_load1", .empty, Double(i % 7) / 4)
            o.add("node_cpu_seconds_total", Labels(["cpu": "0", "mode": "idle"]), Double(i) * 0.97, .counter)
            if i % 20 < 10 { o.add("hosttwin_process_cpu_seconds_total", Labels(["pid": "\(i / 20)"]), Double(i), .counter) }
            var procs = [Entity(kind: .processes, key: "1@1", attributes: ["name": "init", "state": i % 30 < 15 ? "alive" : "stopped"])]
            if i % 9 != 0 { procs.append(Entity(kind: .processes, key: "\(100 + i / 9)@\(i / 9)", attributes: ["name": "job", "pid": .int(Int64(100 + i / 9))])) }
            o.set(.processes, procs)
            try w.commit(o)
        }
        try w.finish(now: t0 + Int64(count) * 1000)
        return store
    }

    func hub(_ dir: String) throws -> HubIngest { try hub(try TwinStore.open(dataDir: dir)) }

    func hub(_ store: TwinStore) throws -> HubIngest {
        let w = TwinWriter(store: store, policy: .testing)
        try w.open()
        return try HubIngest(writer: w)
    }

    @Test func theHubsTwinEqualsTheAgents() throws {
        let root = try temporaryDirectory("hosttwin-hub")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let agent = try Self.agent(ticks: 100, dir: root + "/agent")
        let epoch = try #require(try agent.epoch())
        let reader = StoreBatches(store: agent, host: "web-1")
        func bytes(_ first: UInt64, _ n: Int) throws -> [UInt8] {
            let b = try #require(try reader.batch(from: first, maxTicks: n))
            return try SyncCodec.encode(b).bytes
        }
        #expect(try bytes(41, 40) == bytes(41, 40), "a range read again must encode byte-identically")

        var hub = try hub(root + "/hub")
        #expect(try hub.apply(bytes(1, 40), from: "web-1") == .applied(1...40, samples: 100))
        #expect(try hub.apply(bytes(81, 20), from: "web-1") == .gap(epoch: epoch, resumeAt: 41))
        #expect(try hub.apply(bytes(41, 40), from: "web-1") == .applied(41...80, samples: 100))
        #expect(try hub.apply(bytes(41, 40), from: "web-1") == .duplicate(41...80))
        #expect(throws: SyncError.self) { try hub.apply(try bytes(81, 20), from: "db-2") }
        // Overlapping the cursor: only the new ticks are applied.
        guard case .applied(let r, let n) = try hub.apply(bytes(71, 30), from: "web-1") else { Issue.record("not applied"); return }
        #expect(r == 71...100 && n == 50)

        // A restart of the hub keeps the cursor; a chained batch then needs to be sent standing alone.
        try hub.writer.finish(now: TwinTime.nowMillis())
        hub = try self.hub(root + "/hub")
        #expect(hub.cursor(host: "web-1")?.appliedThrough == 100 && hub.cursor(host: "web-1")?.epoch == epoch)
        #expect(try hub.apply(bytes(61, 40), from: "web-1") == .duplicate(61...100))
        let chained = SyncBatch(host: "web-1", epoch: epoch, baseSeq: 100, ticks: [TickChange(seq: 101, time: Self.t0 + 100_000, refs: [1], values: [1])])
        #expect(try hub.apply(SyncCodec.encode(chained, base: TickRecordEncoder()).bytes, from: "web-1") == .needBase(resumeAt: 101))
        try hub.writer.finish(now: TwinTime.nowMillis())

        try Self.expectTwin(of: agent, at: try TwinStore.open(dataDir: root + "/hub", readOnly: true), host: "web-1", ticks: 100)
    }

    /// A group commit: the live batches of two hosts interleaved in groups (chained batches of one host in
    /// one group), a forged one and a duplicate among them — each gets its own outcome, and both twins end
    /// equal to their agents', the outbox holding each host's batches in the order applied. On both engines
    /// (PostgreSQL saves a group's cursors, refs and outbox rows a table per statement).
    @Test(arguments: StoreEngine.available) func aGroupAppliesEachBatchAsAloneWould(_ engine: StoreEngine) throws {
        let root = try temporaryDirectory("hosttwin-hub")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let place = try EngineStore(engine)
        defer { place.remove() }
        let agent = try Self.agent(ticks: 60, dir: root + "/agent")
        let a = try Self.live(agent, host: "web-1", standalone: 5), b = try Self.live(agent, host: "db-2", standalone: 5)
        let hub = try hub(try place.open())
        var i = 0
        while i < a.count {
            var group: [(bytes: [UInt8], host: String)] = []
            for k in i..<min(i + 7, a.count) { group.append((a[k], "web-1")); group.append((b[k], "db-2")) }
            group.insert((a[i], "db-2"), at: 1) // forged: web-1's batch pushed as db-2
            if i > 0 { group.append((a[i - 1], "web-1")) } // sent again, after the ones that follow it
            let results = try hub.applyGroup(group)
            for (k, r) in results.enumerated() {
                switch (k, r) {
                case (1, .failure(let e)): #expect(e is SyncError)
                case (group.count - 1, .success(.duplicate)) where i > 0: break
                case (_, .success(.applied)): break
                default: Issue.record("group at \(i), batch \(k): \(r)")
                }
            }
            i += 7
        }
        try hub.writer.finish(now: TwinTime.nowMillis())
        let hubStore = try place.open(readOnly: true)
        try Self.expectTwin(of: agent, at: hubStore, host: "web-1", ticks: 60)
        try Self.expectTwin(of: agent, at: hubStore, host: "db-2", ticks: 60)
        #expect(try hubStore.remoteCursors().map(\.appliedThrough) == [60, 60])
        let outbox = try hubStore.outbox(after: 0, limit: 1000)
        for host in ["web-1", "db-2"] {
            let seqs = outbox.filter { $0.host == host }.map(\.firstSeq)
            #expect(!seqs.isEmpty && seqs == seqs.sorted(), "\(host): \(seqs)")
        }
    }

    /// Every series of `agent` at `hubStore` with a host label and the same samples, and the state as of
    /// every third tick the same.
    /// Ticks whose raw samples the agent thinned (its disk cap) travel without samples, marked; the batch
    /// still round-trips byte for byte, the hub records the span as the host's gap and keeps its state.
    /// The live lane's preview: samples ahead of the in-order cursor are read after the stored ones, and
    /// once the in-order lane applies those ticks the preview forgets them — no sample read twice.
    @Test func aPreviewExtendsStoredSamplesUntilTheyArriveInOrder() throws {
        let root = try temporaryDirectory("hosttwin-preview")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let agent = try Self.agent(ticks: 30, dir: root + "/agent")
        let reader = StoreBatches(store: agent, host: "web-1")
        let hub = try hub(root + "/hub")
        let store = hub.writer.store
        #expect(try hub.apply(SyncCodec.encode(#require(try reader.batch(from: 1, maxTicks: 10))).bytes, from: "web-1") == .applied(1...10, samples: 30))
        let id = try #require(try store.seriesID(HubIngest.hostKey(SeriesKey("node_load1", .empty), host: "web-1")))
        let times = { try store.samples(ids: [id], from: .min, to: .max)[id]?.map(\.0) ?? [] }
        #expect(try times() == (0..<10).map { Self.t0 + Int64($0) * 1000 })
        // Ticks 26–30 arrive on the live lane (one older than the cursor is ignored).
        store.preview.advance(host: "web-1", through: Self.t0 + 9_000)
        #expect(store.preview.add(host: "web-1", time: Self.t0 + 5_000, ids: [id], values: [1]) == 0)
        for i in 25..<30 { #expect(store.preview.add(host: "web-1", time: Self.t0 + Int64(i) * 1000, ids: [id], values: [Double(i)]) == 1) }
        #expect(try times() == (0..<10).map { Self.t0 + Int64($0) * 1000 } + (25..<30).map { Self.t0 + Int64($0) * 1000 })
        // Range reads and rollups see them too.
        #expect(try store.samples(ids: [id], from: Self.t0 + 26_000, to: Self.t0 + 27_000)[id]?.count == 2)
        // The in-order lane catches up through tick 27: the preview keeps only 28–30, nothing is read twice.
        guard case .applied(11...27, _) = try hub.apply(SyncCodec.encode(#require(try reader.batch(from: 11, maxTicks: 17))).bytes, from: "web-1") else { Issue.record("not applied"); return }
        store.preview.advance(host: "web-1", through: try #require(hub.lastTime(host: "web-1")))
        #expect(store.preview.count == 3)
        #expect(try times() == (0..<30).map { Self.t0 + Int64($0) * 1000 })
        guard case .applied(28...30, _) = try hub.apply(SyncCodec.encode(#require(try reader.batch(from: 28, maxTicks: 3))).bytes, from: "web-1") else { Issue.record("not applied"); return }
        store.preview.advance(host: "web-1", through: try #require(hub.lastTime(host: "web-1")))
        #expect(store.preview.count == 0)
        #expect(try times() == (0..<30).map { Self.t0 + Int64($0) * 1000 })
    }

    @Test func thinnedTicksBecomeTheHostsGapAtTheHub() throws {
        let root = try temporaryDirectory("hosttwin-hub")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let agent = try Self.agent(ticks: 60, dir: root + "/agent")
        let (from, to) = (Self.t0 + 10_000, Self.t0 + 24_000)
        try agent.pool.write { db in
            try db.execute(sql: "INSERT INTO raw_gaps(host, from_t, to_t, reason, recorded) VALUES ('', ?, ?, 'disk cap', 0)", arguments: [from, to])
        }
        let batch = try #require(try StoreBatches(store: agent, host: "web-1").batch(from: 1, maxTicks: 60))
        #expect(batch.ticks.filter(\.thinned).map(\.time) == Array(stride(from: from, through: to, by: 1000)))
        #expect(batch.ticks.allSatisfy { !$0.thinned || $0.refs.isEmpty })
        let bytes = try SyncCodec.encode(batch).bytes
        let back = try SyncCodec.decode(bytes).batch
        #expect(back == batch)
        #expect(try SyncCodec.encode(back).bytes == bytes)
        // A thinned tick that carries samples is damage.
        var forged = batch
        forged.ticks[0].thinned = true
        #expect(throws: SyncError.self) { try SyncCodec.encode(forged) }

        let hub = try hub(root + "/hub")
        #expect(try hub.apply(bytes, from: "web-1") == .applied(1...60, samples: batch.sampleCount))
        let gaps = try hub.writer.store.rawGaps(host: "web-1")
        #expect(gaps.map { [$0.from, $0.to] } == [[from, to]], "\(gaps)")
        let load = try #require(try hub.writer.store.seriesID(SeriesKey("node_load1", Labels(["host": "web-1"]))))
        let samples = try hub.writer.store.samples(ids: [load], from: .min, to: .max)[load] ?? []
        #expect(samples.count == 60 - 15 && !samples.contains { $0.0 >= from && $0.0 <= to }, "\(samples.count) \(samples.map { ($0.0 - Self.t0) / 1000 })")
        let agentState = try agent.state(at: from + 5000, kinds: [.processes]).map(\.key)
        #expect(try hub.writer.store.state(at: from + 5000, kinds: [.processes]).map { String($0.key.dropFirst(6)) } == agentState, "state history is never thinned")
    }

    static func expectTwin(of agent: TwinStore, at hubStore: TwinStore, host: String, ticks: Int) throws {
        // The digest of the whole twin, equal on both sides; and it sees a difference (a shorter twin).
        let mine = try TwinDigest.compute(store: agent, host: nil, until: .max)
        let theirs = try TwinDigest.compute(store: hubStore, host: host, until: .max)
        #expect(mine.samples > 0 && mine.versions > 0 && mine == theirs)
        #expect(try TwinDigest.compute(store: hubStore, host: host, until: t0 + Int64(ticks / 2) * 1000).digest != mine.digest)
        #expect(try TwinDigest.compute(store: hubStore, host: "nobody", until: .max).samples == 0)
        for s in try agent.series() {
            let mine = try #require(try agent.samples(s.key, from: .min, to: .max))
            let theirs = try #require(try hubStore.samples(HubIngest.hostKey(s.key, host: host), from: .min, to: .max), "\(s.key) missing at the hub")
            #expect(theirs.map(\.0) == mine.map(\.0) && theirs.map(\.1) == mine.map(\.1), "\(s.key)")
        }
        for i in stride(from: 0, to: ticks, by: 3) {
            let t = Self.t0 + Int64(i) * 1000 + 500
            struct V: Equatable { var attributes: [String: AttributeValue]; var from: Int64 }
            let mine = Dictionary(uniqueKeysWithValues: try agent.state(at: t).map { ($0.key, V(attributes: $0.attributes, from: $0.validFrom)) })
            let theirs = Dictionary(uniqueKeysWithValues: try hubStore.state(at: t).filter { $0.key.hasPrefix(host + "/") }.map { v -> (String, V) in
                var a = v.attributes
                #expect(a.removeValue(forKey: "host") == .string(host))
                return (String(v.key.dropFirst(host.count + 1)), V(attributes: a, from: v.validFrom))
            })
            #expect(theirs == mine, "state at tick \(i)")
        }
    }

    /// `agent`'s ticks as an agent sends them: `first` ticks standing alone, then one chained batch per tick.
    static func live(_ agent: TwinStore, host: String, standalone first: Int) throws -> [[UInt8]] {
        let reader = StoreBatches(store: agent, host: host)
        let head = try #require(try reader.batch(from: 1, maxTicks: first))
        var encoded = try SyncCodec.encode(head)
        var out = [encoded.bytes]
        var previous = Set(head.ticks.last!.refs)
        var seq = UInt64(first) + 1
        while let alone = try reader.batch(from: seq, maxTicks: 1) {
            let tick = alone.ticks[0]
            let chained = SyncBatch(host: host, epoch: alone.epoch, baseSeq: seq - 1, dictionary: alone.dictionary.filter { !previous.contains($0.ref) }, ticks: [tick])
            encoded = try SyncCodec.encode(chained, base: encoded.state)
            out.append(encoded.bytes)
            previous = Set(tick.refs)
            seq += 1
        }
        return out
    }

    /// A hub relays what it applied: its outbox holds every batch with its origin position, a reader
    /// starting anywhere (a restarted upstream without decoder state) gets each host's first batch standing
    /// alone, and the upstream's twin equals the agent's.
    @Test func aRelayedTwinEqualsTheAgents() throws {
        let root = try temporaryDirectory("hosttwin-relay")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let agent = try Self.agent(ticks: 120, dir: root + "/agent")
        let dc = try hub(root + "/dc")
        dc.standaloneEvery = 25
        for b in try Self.live(agent, host: "web-1", standalone: 30) {
            guard case .applied = try dc.apply(b, from: "web-1") else { Issue.record("not applied"); return }
        }
        let rows = try dc.writer.store.outbox(after: 0, limit: 1000)
        #expect(rows.count == 91 && rows.map(\.lastSeq) == Array(30...120).map(UInt64.init))
        // Chained rows as received, one standing alone at most every 25 ticks.
        let alone = rows.filter(\.standalone).map(\.firstSeq)
        #expect(alone.first == 1 && alone.count >= 4 && zip(alone.dropFirst(), alone.dropFirst(2)).allSatisfy { $1 - $0 <= 26 }, "\(alone)")

        // The upstream reads half, restarts (losing its decoders), and reads the rest from its cursor.
        var global = try hub(root + "/global")
        var reader = try OutboxReader(store: dc.writer.store, held: [:])
        for item in try reader.next(limit: 40) {
            guard case .applied = try global.apply(item.bytes, from: item.host) else { Issue.record("not applied: \(item.range)"); return }
        }
        try global.writer.finish(now: TwinTime.nowMillis())
        global = try hub(root + "/global")
        let cursor = try #require(global.cursor(host: "web-1"))
        #expect(cursor.appliedThrough == 69)
        reader = try OutboxReader(store: dc.writer.store, held: ["web-1": (cursor.epoch, cursor.appliedThrough)])
        let rest = try reader.next(limit: 1000)
        #expect(rest.first?.range == 70...70)
        #expect(try SyncCodec.header(rest[0].bytes).baseSeq == nil, "the first batch of a session stands alone")
        #expect(rest.dropFirst().map(\.bytes) == rows.filter { $0.firstSeq > 70 }.map(\.batch), "then the rows as kept")
        for item in rest {
            guard case .applied = try global.apply(item.bytes, from: item.host) else { Issue.record("not applied: \(item.range)"); return }
        }
        #expect(try reader.next().isEmpty)
        try global.writer.finish(now: TwinTime.nowMillis())
        try Self.expectTwin(of: agent, at: try TwinStore.open(dataDir: root + "/global", readOnly: true), host: "web-1", ticks: 120)

        // Pruning what every upstream holds keeps the last standalone row and what follows it.
        let before = try dc.writer.store.outboxExtent()
        try dc.writer.store.pruneOutbox(held: ["web-1": (cursor.epoch, 120)], keepSince: .max)
        let after = try dc.writer.store.outbox(after: 0, limit: 1000)
        #expect(after.first?.standalone == true && after.first?.firstSeq == alone.last && after.last?.lastSeq == 120)
        #expect(after.count < before.rows)
    }

    /// At a hub a connection key carries its host in front; the remote address in it is still what the
    /// policy seals (and a sealed address may hold slashes).
    @Test func hostPrefixedConnectionKeysAreSealedAndOpened() throws {
        let dir = try temporaryDirectory("hosttwin-hub-keys")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cipher = PolicyCipher(policy: DataPolicy(), keys: try KeyRing(dataDir: dir, create: true))
        for key in ["web-1/tcp/10.0.0.1:22/192.0.2.7:50000", "tcp/10.0.0.1:22/192.0.2.7:50000", "db.dc2/tcp/[fe80::1]:443/[2001:db8::7]:6000"] {
            let sealed = cipher.seal(.connections, key: key)
            #expect(!sealed.contains("192.0.2.7") && !sealed.contains("2001:db8::7"), "\(sealed)")
            #expect(sealed.split(separator: ":").last == key.split(separator: ":").last, "the remote port stays in clear")
            #expect(cipher.open(.connections, key: sealed) == key)
            #expect(cipher.clear(.connections, key: sealed) == key)
        }
    }
}
