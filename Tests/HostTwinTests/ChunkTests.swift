import Foundation
import Testing
@testable import TwinStorage

/// Round trips of the XOR chunk codec on random and adversarial inputs.
@Suite struct ChunkTests {
    func roundTrip(_ samples: [(Int64, Double)]) throws {
        var e = XORChunkEncoder()
        for (t, v) in samples { try e.append(t, v) }
        var out: [(Int64, Double)] = []
        try XORChunkDecoder.decode(e.bytes, count: e.count, into: &out)
        #expect(out.count == samples.count)
        for (a, b) in zip(out, samples) {
            #expect(a.0 == b.0)
            #expect(a.1.bitPattern == b.1.bitPattern, "value \(b.1) came back as \(a.1)")
        }
    }

    @Test func regularSeries() throws {
        try roundTrip((0..<600).map { (1_800_000_000_000 + Int64($0) * 1000, Double($0) * 0.01) })
    }

    @Test func randomSeries() throws {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var t = Int64.random(in: -1_000_000_000_000...4_000_000_000_000, using: &rng)
            let n = Int.random(in: 1...300, using: &rng)
            var s: [(Int64, Double)] = []
            for _ in 0..<n {
                t += Int64.random(in: 1...(Bool.random() ? 2000 : 10_000_000_000), using: &rng)
                let v: Double
                switch Int.random(in: 0..<6, using: &rng) {
                case 0: v = Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &rng))
                case 1: v = s.last?.1 ?? 0
                case 2: v = Double(Int.random(in: -5...5, using: &rng))
                default: v = Double.random(in: -1e12...1e12, using: &rng)
                }
                s.append((t, v))
            }
            try roundTrip(s)
        }
    }

    @Test func adversarialValues() throws {
        let values: [Double] = [.nan, .infinity, -.infinity, -0.0, 0.0, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                                .leastNonzeroMagnitude, 1, Double(bitPattern: 1), Double(bitPattern: UInt64.max), 1e308, -1e-308, .nan]
        try roundTrip(values.enumerated().map { (Int64($0.offset) * 7 + 1, $0.element) })
        // Huge timestamp jumps, both directions of delta-of-delta.
        try roundTrip([(0, 1), (1, 2), (Int64(1) << 50, 3), ((Int64(1) << 50) + 1, 4), (Int64(1) << 61, 5)])
        try roundTrip([(-5, 1)])
    }

    @Test func rejectsOutOfOrderAndEqualTimestamps() throws {
        var e = XORChunkEncoder()
        try e.append(100, 1)
        #expect(throws: ChunkError.outOfOrder(previous: 100, next: 100)) { try e.append(100, 2) }
        #expect(throws: ChunkError.outOfOrder(previous: 100, next: 99)) { try e.append(99, 2) }
        try e.append(101, 2)
        #expect(e.count == 2)
    }

    @Test func truncatedChunkIsAnError() throws {
        var e = XORChunkEncoder()
        for i in 0..<50 { try e.append(Int64(i) * 1000, Double(i) * 1.5) }
        var out: [(Int64, Double)] = []
        #expect(throws: ChunkError.self) { try XORChunkDecoder.decode(Array(e.bytes.prefix(e.bytes.count / 2)), count: 50, into: &out) }
        #expect(throws: ChunkError.self) { try XORChunkDecoder.decode([], count: 3, into: &out) }
    }

    @Test func compressesRegularData() throws {
        var e = XORChunkEncoder()
        for i in 0..<600 { try e.append(1_800_000_000_000 + Int64(i) * 1000, 42) }
        #expect(e.bytes.count <= 600 * 2 / 8 + 20, "constant values at a fixed interval take about 2 bits a sample")
    }

    @Test func headLogRecords() throws {
        let pairs: [(Int64, Double)] = [(5, 1.5), (1, -2), (300, .infinity)]
        let b = HeadLogRecord.encode(pairs)
        #expect(try HeadLogRecord.lookup(b, 300) == .infinity)
        #expect(try HeadLogRecord.lookup(b, 1) == -2)
        #expect(try HeadLogRecord.lookup(b, 2) == nil)
        #expect(try HeadLogRecord.decode(b).map(\.0) == [1, 5, 300])
        #expect(throws: ChunkError.self) { try HeadLogRecord.decode(Array(b.dropLast())) }
        #expect(throws: ChunkError.self) { try HeadLogRecord.decode([1, 2]) }
    }
}
