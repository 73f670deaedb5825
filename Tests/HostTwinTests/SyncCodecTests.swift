import Foundation
import Testing
import TwinCore
@testable import TwinStorage
import TwinSync
import GRDB

/// The sync protocol's batches: exact round trips, byte-identical re-encoding, chained bases, and
/// damage refused.
@Suite struct SyncCodecTests {
    /// Ticks of a host-like stream: the same series in the same order, a few values changing, series
    /// appearing and leaving, state changes now and then.
    static func ticks(from seq: UInt64, count: Int, t0: Int64 = 1_800_000_000_000, seed: UInt64 = 1) -> [TickChange] {
        var rng = SeededGenerator(seed: seed &+ seq)
        var values = (0..<300).map { Double($0) }
        return (0..<count).map { i in
            let s = seq + UInt64(i)
            for j in 0..<values.count where Int.random(in: 0..<10, using: &rng) == 0 { values[j] += Double(Int.random(in: 1...4096, using: &rng)) }
            var refs = Array(1...Int64(values.count))
            var vals = values
            if s % 7 == 0 { refs.append(1000 + Int64(s)); vals.append(.nan) } // a short-lived series
            var tick = TickChange(seq: s, time: t0 + Int64(s) * 1000, refs: refs, values: vals)
            if s % 5 == 0 {
                tick.opened = [Entity(kind: .processes, key: "\(s)@\(s * 3)", attributes: ["name": "job", "pid": .int(Int64(s)), "command": .string("job --n \(s)")])]
                // In the order batches keep them: by kind, then key.
                tick.closed = [EntityRef(kind: .connections, key: "tcp/10.0.0.1:22/10.0.0.2:\(s)"), EntityRef(kind: .processes, key: "\(s - 5)@\((s - 5) * 3)")]
            }
            return tick
        }
    }

    static func dictionary(_ ticks: [TickChange]) -> [SeriesDefinition] {
        Set(ticks.flatMap(\.refs)).sorted().map { SeriesDefinition(ref: $0, key: SeriesKey("m_\($0)", Labels(["host": "a", "i": "\($0)"])), type: $0 % 2 == 0 ? .counter : .gauge) }
    }

    @Test func roundTripsAndReencodesIdentically() throws {
        let ticks = Self.ticks(from: 1, count: 60)
        let batch = SyncBatch(host: "web-1", epoch: 0xfeed_beef, dictionary: Self.dictionary(ticks), ticks: ticks)
        let (bytes, _) = try SyncCodec.encode(batch)
        let (back, _) = try SyncCodec.decode(bytes)
        #expect(back == batch, "decoded batch differs")
        #expect(try SyncCodec.encode(back).bytes == bytes, "a resent batch must be byte-identical")
        let h = try SyncCodec.header(bytes)
        #expect(h.host == "web-1" && h.epoch == 0xfeed_beef && h.range == 1...60 && h.baseSeq == nil)
        // Host-like data: well under a byte per sample before TLS and framing.
        let perSample = Double(bytes.count) / Double(batch.sampleCount)
        #expect(perSample < 1.0, "\(bytes.count) bytes for \(batch.sampleCount) samples")
    }

    /// A relay's destination policy rewrites a batch's state section only: unchanged it gives the same
    /// bytes; changed, a chained batch still decodes from its base with its samples as they were.
    @Test func rewritingStateLeavesSamplesAndChainsAlone() throws {
        let ticks = Self.ticks(from: 1, count: 20)
        let first = SyncBatch(host: "h", epoch: 1, dictionary: Self.dictionary(ticks), ticks: Array(ticks[0..<10]))
        let (a, state) = try SyncCodec.encode(first)
        let second = SyncBatch(host: "h", epoch: 1, baseSeq: 10, ticks: Array(ticks[10...]))
        let (b, _) = try SyncCodec.encode(second, base: state)
        #expect(try SyncCodec.rewritingState(b) { _, _ in } == b)
        let rewritten = try SyncCodec.rewritingState(b) { opened, closed in
            for i in opened.indices { opened[i].attributes["command"] = nil }
            for i in closed.indices { closed[i].key += "#" }
        }
        let decodedBase = try SyncCodec.decode(a).state
        let back = try SyncCodec.decode(rewritten, base: (10, decodedBase)).batch
        #expect(back.ticks.map(\.values.count) == second.ticks.map(\.values.count))
        #expect(zip(back.ticks, second.ticks).allSatisfy { $0.refs == $1.refs && $0.values.map(\.bitPattern) == $1.values.map(\.bitPattern) })
        #expect(back.ticks.flatMap(\.opened).allSatisfy { $0.attributes["command"] == nil } && !back.ticks.flatMap(\.opened).isEmpty)
        #expect(back.ticks.flatMap(\.closed).allSatisfy { $0.key.hasSuffix("#") } && !back.ticks.flatMap(\.closed).isEmpty)
        #expect(throws: SyncError.self) { try SyncCodec.rewritingState(b) { opened, _ in opened.removeAll() } }
        #expect(throws: SyncError.self) { try SyncCodec.rewritingState(Array(b.dropLast())) { _, _ in } }
    }

    /// Live batches of one tick each, chained on the previous tick: small, and decodable only from the
    /// state after that tick.
    @Test func chainedBatchesNeedTheirBase() throws {
        let ticks = Self.ticks(from: 100, count: 3)
        let first = SyncBatch(host: "h", epoch: 1, dictionary: Self.dictionary(ticks), ticks: [ticks[0]])
        let (a, encState) = try SyncCodec.encode(first)
        let second = SyncBatch(host: "h", epoch: 1, baseSeq: 100, ticks: [ticks[1]])
        let (b, _) = try SyncCodec.encode(second, base: encState)
        #expect(try SyncCodec.encode(second, base: encState).bytes == b)
        let standalone = try SyncCodec.encode(SyncBatch(host: "h", epoch: 1, ticks: [ticks[1]])).bytes
        #expect(b.count * 2 < standalone.count, "a chained tick (\(b.count) bytes) should cost far less than a standalone one (\(standalone.count))")

        #expect(throws: SyncError.baseMismatch(expected: 100, have: nil)) { try SyncCodec.decode(b) }
        let (_, decState) = try SyncCodec.decode(a)
        #expect(throws: SyncError.baseMismatch(expected: 100, have: 99)) { try SyncCodec.decode(b, base: (99, decState)) }
        #expect(try SyncCodec.decode(b, base: (100, decState)).batch == second)
        // Without the base state the encoder refuses a base, and vice versa.
        #expect(throws: SyncError.self) { try SyncCodec.encode(second) }
        #expect(throws: SyncError.self) { try SyncCodec.encode(SyncBatch(host: "h", epoch: 1, ticks: [ticks[1]]), base: encState) }
    }

    /// A base is its last tick alone: a series the base tick lacked but an earlier tick had decodes the
    /// same whether the receiver decoded the whole chain or only the base tick standing alone (a relay
    /// that rebuilt it). Found by the tiers test: values of such series came out as garbage upstream.
    @Test func aBaseIsItsLastTickAlone() throws {
        let defs = [SeriesDefinition(ref: 1, key: SeriesKey("a", .empty), type: .gauge), SeriesDefinition(ref: 2, key: SeriesKey("b", .empty), type: .gauge)]
        let t0: Int64 = 1_800_000_000_000
        let t1 = TickChange(seq: 1, time: t0, refs: [1, 2], values: [16, 256])
        let t2 = TickChange(seq: 2, time: t0 + 1000, refs: [1], values: [17])
        let t3 = TickChange(seq: 3, time: t0 + 2000, refs: [1, 2], values: [17, 256])
        let (whole, state) = try SyncCodec.encode(SyncBatch(host: "h", epoch: 1, dictionary: defs, ticks: [t1, t2]))
        let chained = SyncBatch(host: "h", epoch: 1, baseSeq: 2, ticks: [t3])
        let (c, _) = try SyncCodec.encode(chained, base: state)
        let afterWhole = try SyncCodec.decode(whole).state
        let afterAlone = try SyncCodec.decode(try SyncCodec.encode(SyncBatch(host: "h", epoch: 1, dictionary: [defs[0]], ticks: [t2])).bytes).state
        #expect(try SyncCodec.decode(c, base: (2, afterWhole)).batch == chained)
        #expect(try SyncCodec.decode(c, base: (2, afterAlone)).batch == chained)
    }

    /// A batch written by hand from docs/format/sync.md (the fuzz corpus's seed, made by a Python script)
    /// decodes as the document says. It is of protocol version 1, which a hub still reads.
    @Test func readsABatchWrittenFromTheFormatDocument() throws {
        let seed = try [UInt8](Data(contentsOf: URL(fileURLWithPath: FuzzCorpusTests.corpusRoot + "/sync/seed-batch")))
        let (batch, _) = try SyncCodec.decode(seed)
        #expect(batch == SyncBatch(host: "web-1", epoch: 0xfeed, dictionary: [
            SeriesDefinition(ref: 1, key: SeriesKey("node_load1"), type: .gauge),
            SeriesDefinition(ref: 2, key: SeriesKey("node_cpu_seconds_total", Labels(["cpu": "0", "mode": "idle"])), type: .counter),
        ], ticks: [TickChange(seq: 1, time: 1_800_000_000_000, refs: [1, 2], values: [1, 2])]))
    }

    @Test func refusesGapsAndDisorder() throws {
        var ticks = Self.ticks(from: 1, count: 3)
        ticks[2].seq = 9
        #expect(throws: SyncError.self) { try SyncCodec.encode(SyncBatch(host: "h", epoch: 1, ticks: ticks)) }
        ticks = Self.ticks(from: 1, count: 3)
        ticks[2].time = ticks[1].time
        #expect(throws: SyncError.self) { try SyncCodec.encode(SyncBatch(host: "h", epoch: 1, ticks: ticks)) }
    }

    /// Every truncation and every bit flip is a `SyncError`, never a crash or a different batch.
    @Test func damageIsRefused() throws {
        let ticks = Self.ticks(from: 5, count: 4)
        for compress in [true, false] {
            let (bytes, _) = try SyncCodec.encode(SyncBatch(host: "h", epoch: 7, dictionary: Self.dictionary(ticks), ticks: ticks), compress: compress)
            for n in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 200)) {
                #expect(throws: SyncError.self) { try SyncCodec.decode(Array(bytes.prefix(n))) }
            }
            for i in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 100)) {
                var bad = bytes
                bad[i] ^= 0x10
                #expect(throws: SyncError.self) { try SyncCodec.decode(bad) }
            }
        }
    }
}

/// Positions in a store: an epoch per store, sequence numbers without gaps across seals, restarts and a
/// crash (ticks still in the log), kept as runs on the interval grid.
@Suite struct SyncPositionTests {
    @Test func sequenceNumbersSurviveSealsRestartsAndCrashes() throws {
        let dir = try temporaryDirectory("hosttwin-positions")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TwinStore.open(dataDir: dir)
        var writer = TwinWriter(store: store, policy: .testing) // 20 s head windows
        let t0: Int64 = 1_800_000_000_000
        try writer.begin(now: t0 - 1, interval: 1000)
        let epoch = try #require(try store.epoch())
        var expected: [(UInt64, Int64)] = []
        func tick(_ t: Int64) throws {
            var o = Observation(timestamp: t)
            o.add("x", .empty, Double(t))
            let r = try writer.commit(o)
            expected.append((r.seq, t))
        }
        for i in 0..<50 { try tick(t0 + Int64(i) * 1000) }          // crosses two head-window cuts
        for i in 0..<5 { try tick(t0 + 60_000 + Int64(i) * 2000) }  // another interval: a new run
        try writer.finish(now: t0 + 70_000)
        writer = TwinWriter(store: store, policy: .testing)
        try writer.begin(now: t0 + 100_000, interval: 1000)
        for i in 0..<5 { try tick(t0 + 100_000 + Int64(i) * 1000) } // after a gap: a new run
        // A crash: the writer goes away without finishing; its ticks are only in the log.
        writer = TwinWriter(store: store, policy: .testing)
        #expect(expected.map(\.0) == Array(1...60))
        #expect(try store.epoch() == epoch)
        #expect(try store.ticks(from: 1).map { [$0.seq, UInt64($0.time)] } == expected.map { [$0.0, UInt64($0.1)] })
        try withExtendedLifetime(writer) {}

        let reopened = try TwinStore.open(dataDir: dir)
        let w2 = TwinWriter(store: reopened, policy: .testing)
        try w2.begin(now: t0 + 200_000, interval: 1000)
        #expect(w2.lastSeq == 60)
        var o = Observation(timestamp: t0 + 200_000)
        o.add("x", .empty, 1)
        #expect(try w2.commit(o).seq == 61)
        try w2.finish(now: t0 + 201_000)
        #expect(try reopened.ticks(from: 58).map(\.seq) == [58, 59, 60, 61])
        #expect(try reopened.ticks(from: 1, limit: 3).map(\.time) == [t0, t0 + 1000, t0 + 2000])
        #expect(try reopened.epoch() == epoch)
        // Runs on the grid: 50 ticks at 1 s, 5 at 2 s, 5 at 1 s, 1: four rows.
        let runs = try reopened.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM tick_runs") }
        #expect(runs == 4)
    }
}

/// A push session compressed as one zstd stream: frames come back exactly, however the bytes are cut on
/// the way, and garbage is an error.
@Suite struct SyncStreamTests {
    @Test func framesSurviveTheStreamCutAnywhere() throws {
        let ticks = SyncCodecTests.ticks(from: 1, count: 30)
        var frames: [[UInt8]] = []
        var state: TickRecordEncoder?
        for (i, t) in ticks.enumerated() {
            let b = SyncBatch(host: "h", epoch: 1, baseSeq: i == 0 ? nil : t.seq - 1, dictionary: i == 0 ? SyncCodecTests.dictionary(ticks) : [], ticks: [t])
            let e = try SyncCodec.encode(b, base: state)
            frames.append(e.bytes)
            state = e.state
        }
        let compressor = SyncStreamCompressor()
        var wire: [UInt8] = []
        for f in frames { wire += try compressor.compress(f) }
        #expect(wire.count < frames.reduce(0) { $0 + $1.count }, "the stream should be smaller than the frames")
        var rng = SeededGenerator(seed: 3)
        let decompressor = SyncStreamDecompressor()
        var out: [UInt8] = []
        var i = 0
        while i < wire.count {
            let n = Int.random(in: 1...200, using: &rng)
            out += try decompressor.decompress(Array(wire[i..<min(i + n, wire.count)]))
            i += n
        }
        #expect(out == frames.flatMap { $0 })
        #expect(throws: SyncError.self) { try SyncStreamDecompressor().decompress(Array(repeating: 0x41, count: 64)) }
    }
}

/// A destination that takes rollups only gets every tick and state change, and one point a minute per
/// series: at the first tick of each minute, the minute before — a counter's last value, a gauge's mean.
@Suite struct MinuteRollupsTests {
    @Test func aMinuteBecomesOnePointPerSeries() throws {
        let t0: Int64 = 1_800_000_000_000 // a whole minute
        let ticks = (0..<150).map { i in
            var t = TickChange(seq: UInt64(i + 1), time: t0 + Int64(i) * 1000, refs: [1, 2], values: [Double(i * 10), Double(i % 60)])
            if i == 30 { t.opened = [Entity(kind: .processes, key: "9@9", attributes: ["name": "job"])] }
            return t
        }
        let dictionary = [SeriesDefinition(ref: 1, key: SeriesKey("x_total"), type: .counter), SeriesDefinition(ref: 2, key: SeriesKey("g"), type: .gauge)]
        // Three batches: the first stands alone, the next two chain on the one before (as the outbox keeps them).
        let (b1, s1) = try SyncCodec.encode(SyncBatch(host: "h", epoch: 7, dictionary: dictionary, ticks: Array(ticks[0..<50])))
        let (b2, s2) = try SyncCodec.encode(SyncBatch(host: "h", epoch: 7, baseSeq: 50, ticks: Array(ticks[50..<100])), base: s1)
        let (b3, _) = try SyncCodec.encode(SyncBatch(host: "h", epoch: 7, baseSeq: 100, ticks: Array(ticks[100..<150])), base: s2)
        var rollups = MinuteRollups()
        let out = try [b1, b2, b3].map { try SyncCodec.decode(try rollups.rewrite($0)).batch }
        #expect(out.allSatisfy { $0.baseSeq == nil })
        #expect(out[0].dictionary == dictionary)
        let got = out.flatMap(\.ticks)
        #expect(got.map(\.seq) == ticks.map(\.seq) && got.map(\.time) == ticks.map(\.time))
        #expect(got[30].opened == ticks[30].opened)
        let withSamples = got.filter { !$0.refs.isEmpty }
        #expect(withSamples.map(\.time) == [t0 + 60_000, t0 + 120_000])
        // Minute 0 (ticks 0…59): the counter's last is 590, the gauge's mean of 0…59 is 29.5.
        #expect(withSamples[0].refs == [1, 2] && withSamples[0].values == [590, 29.5])
        #expect(withSamples[1].values == [1190, 29.5])
        // A chained batch without the batch it chains on is refused, not guessed.
        var fresh = MinuteRollups()
        #expect(throws: (any Error).self) { try fresh.rewrite(b2) }
    }
}
