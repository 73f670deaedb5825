import Foundation
import Testing
@testable import TwinStorage

/// Round trips of the head's XOR chunks and the sealed-chunk codec on random and adversarial inputs.
@Suite struct ChunkTests {
    func roundTrip(_ samples: [(Int64, Double)]) throws {
        let blob = try ChunkCodec.encode(samples)
        let back = try ChunkCodec.decode(blob)
        #expect(back.count == samples.count)
        for (a, b) in zip(back, samples) {
            #expect(a.0 == b.0)
            #expect(a.1.bitPattern == b.1.bitPattern, "sealed: value \(b.1) came back as \(a.1)")
        }
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

    @Test func sealedCodecPicksTheSmallestEncoding() throws {
        let t0: Int64 = 1_800_000_000_000
        // CPU seconds at USER_HZ: decimal with two places, steady increments -> a few bytes for an hour.
        let counter = (0..<3600).map { (t0 + Int64($0) * 1000, (123_456.78 + Double($0) * 0.37).rounded(toPlaces: 2)) }
        #expect(try ChunkCodec.encode(counter).count < 200)
        // Memory in bytes moving by whole pages: the differences share the divisor 4096.
        var rng = SystemRandomNumberGenerator()
        var mem = 8_000_000_000.0
        let pages = (0..<3600).map { i -> (Int64, Double) in
            mem += Double(Int.random(in: -3...3, using: &rng) * 4096)
            return (t0 + Int64(i) * 1000, mem)
        }
        #expect(try ChunkCodec.encode(pages).count < 3600)
        // A constant: nearly nothing.
        let constant = try ChunkCodec.encode((0..<3600).map { (t0 + Int64($0) * 1000, 42.0) })
        #expect(constant.count < 48, "\(constant.count) bytes")
        // Values that are not short decimals fall back to XOR and still round-trip exactly.
        try roundTrip((0..<500).map { (t0 + Int64($0) * 1000, Double.random(in: 0..<1, using: &rng)) })
    }

    @Test func sealedCodecDetectsDamage() throws {
        let blob = try ChunkCodec.encode((0..<300).map { (Int64($0) * 1000, Double($0 % 7) * 1.5) })
        for i in [0, 1, blob.count / 2, blob.count - 1] {
            var bad = blob
            bad[i] ^= 0x40
            #expect(throws: ChunkError.self) { try ChunkCodec.decode(bad) }
        }
        for n in [0, 1, 5, blob.count - 1] {
            #expect(throws: ChunkError.self) { try ChunkCodec.decode(Array(blob.prefix(n))) }
        }
        #expect(throws: ChunkError.self) { try ChunkCodec.decode(blob, columnCount: 2) }
        #expect(throws: ChunkError.outOfOrder(previous: 5, next: 5)) { try ChunkCodec.encode([(5, 1), (5, 2)]) }
        #expect(throws: ChunkError.self) { try ChunkCodec.encode([(Int64.min + 1, 1), (Int64.max, 2)]) }
    }

    /// A group row's directory finds each member's blob; damaged, truncated or inconsistent directories
    /// are errors, never a wrong member.
    @Test func groupRowsFindTheirMembersAndRefuseDamage() throws {
        func value(_ id: Int64, _ i: Int) -> Double { Double(id * 100) + Double(i) }
        var blobs: [(id: Int64, count: Int, blob: [UInt8])] = []
        for (id, n) in [(Int64(129), 3), (130, 1), (191, 40)] {
            let samples: [(Int64, Double)] = (0..<n).map { (Int64($0) * 1000, value(id, $0)) }
            blobs.append((id, n, try ChunkCodec.encodeMember(samples)))
        }
        let (dir, stored) = GroupBlock.encode(blobs)
        let directory = try GroupBlock.directory(dir)
        #expect(directory.members.map { $0.id } == [129, 130, 191])
        #expect(directory.members.map { $0.count } == [3, 1, 40])
        let data = try GroupBlock.rawData(stored, directory)
        #expect(data == blobs.flatMap { $0.blob })
        for b in blobs {
            let m = try #require(directory.find(b.id))
            let decoded = try ChunkCodec.decodeMember(data[m.range])
            #expect(decoded.last?.1 == value(b.id, b.count - 1))
        }
        #expect(directory.find(128) == nil && directory.find(131) == nil && directory.find(192) == nil)
        #expect(GroupBlock.group(of: 129) == 2 && GroupBlock.group(of: 191) == 2 && GroupBlock.group(of: 192) == 3)
        // Stored data that is not what the directory says it is: an error, raw or deflated; so is a byte changed.
        var flipped = stored
        flipped[stored.count / 2] ^= 1
        #expect(throws: ChunkError.self) { try GroupBlock.rawData(flipped, directory) }
        for d in [directory, GroupBlock.Directory(members: directory.members, deflated: !directory.deflated, rawLength: directory.rawLength, dataCRC: directory.dataCRC)] {
            #expect(throws: ChunkError.self) { try GroupBlock.rawData(Array(stored.dropLast()), d) }
            #expect(throws: ChunkError.self) { try GroupBlock.rawData(stored + [0], d) }
        }
        for i in dir.indices {
            var bad = dir
            bad[i] ^= 0x10
            #expect(throws: ChunkError.self) { try GroupBlock.directory(bad) }
        }
        for n in 0..<dir.count { #expect(throws: ChunkError.self) { try GroupBlock.directory(Array(dir.prefix(n))) } }
        // Checksums made right: members of two groups, a repeated id, or members not tiling the data are refused.
        let twoGroups = GroupBlock.encode([(id: 63, count: 1, blob: [0]), (id: 64, count: 1, blob: [0])]).directory
        #expect(throws: ChunkError.corrupt("group row spans two groups")) { try GroupBlock.directory(twoGroups) }
        let repeated = ChunkCodec.withChecksum([1, 0, 2, 0, 0, 0, 0, 2, 5, 1, 1, 0, 1, 1])
        #expect(throws: ChunkError.corrupt("group member ids out of order")) { try GroupBlock.directory(repeated) }
        let short = ChunkCodec.withChecksum([1, 0, 3, 0, 0, 0, 0, 2, 5, 1, 1, 1, 1, 1])
        #expect(throws: ChunkError.self) { try GroupBlock.directory(short) }
    }

    @Test func rollupBlocksRoundTrip() throws {
        let samples = (0..<7200).map { (Int64($0) * 1000, Double($0 % 100) / 4) }
        let points = Rollup.points(samples, step: 60_000)
        #expect(points.count == 120)
        #expect(points[0] == RollupPoint(t: 0, min: 0, max: 14.75, sum: (0..<60).reduce(0.0) { $0 + Double($1) / 4 }, count: 60, last: 14.75))
        #expect(try Rollup.decode(Rollup.encode(points)) == points)
        let hours = Rollup.coarsen(points, step: 3_600_000)
        #expect(hours == Rollup.points(samples, step: 3_600_000))
    }

    /// Log records against the previous ones of their segment: ticks with changing series lists,
    /// repeated and special values, and batches.
    @Test func logRecordsRoundTrip() throws {
        var enc = TickRecordEncoder()
        var dec = TickRecordDecoder()
        var rng = SystemRandomNumberGenerator()
        var t: Int64 = 1_800_000_000_000
        for round in 0..<300 {
            t += Int64.random(in: 1...5000, using: &rng)
            var expected: [(Int64, Int64, Double)] = []
            var body: ByteWriter
            if round % 7 == 6 {
                expected = (0..<Int.random(in: 1...40, using: &rng)).map { _ in
                    (Int64.random(in: 1...100, using: &rng), t + Int64.random(in: -10_000...10_000, using: &rng), Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &rng)))
                }
                body = enc.batch(expected)
            } else {
                let ids = round % 3 == 0 ? Array(Set((0..<30).map { _ in Int64.random(in: 1...60, using: &rng) })) : Array(Int64(1)...20)
                let special: [Double] = [.nan, .infinity, -0.0, 0, 1e300]
                let values = ids.map { id in Bool.random(using: &rng) ? Double(id) : (Bool.random(using: &rng) ? special.randomElement(using: &rng)! : Double.random(in: -1e6...1e6, using: &rng)) }
                expected = zip(ids, values).map { ($0, t, $1) }
                body = enc.tickRecord(t, ids: ids, values: values)
            }
            enc.commitPending()
            var got: [(Int64, Int64, Double)] = []
            try body.bytes.withUnsafeBytes { try dec.decode($0) { got.append(($0, $1, $2)) } }
            #expect(got.count == expected.count)
            for (a, b) in zip(got, expected) { #expect(a.0 == b.0 && a.1 == b.1 && a.2.bitPattern == b.2.bitPattern) }
        }
    }

    /// A reader's decoded tail of a segment: records decode one after another; a whole record (its
    /// checksum right) that does not decode stops the tail for good — reading the file again does not try
    /// it with a decoder it already changed — and the samples before it stay.
    @Test func aLogTailStopsForGoodAtAnUndecodableRecord() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let w = LogWriter(dataDir: dir)
        _ = try w.start(seq: 1)
        for i in 0..<3 { try w.appendTick(Int64(i) * 1000, ids: [1, 2], values: [Double(i), 7]) }
        try w.closeSegment()
        let path = LogSegment.path(dir, 1)
        var tail = LogTail()
        #expect(try tail.advance(path))
        #expect(tail.records == 3 && tail.samples == 6 && tail.stopped == nil)
        // A tick record of two samples whose first value decodes (the decoder keeps it) and whose second
        // is cut short.
        let bad: [UInt8] = [1, 0x02, 0x04, 0x02, 0x02, 0x03, 0x70, 0x05, 0x00, 0x01]
        var record = ByteWriter()
        record.u32(UInt32(bad.count))
        record.u32(bad.withUnsafeBytes { Zlib.crc32($0) })
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.seekToEnd()
        try h.write(contentsOf: Data(record.bytes + bad))
        try h.close()
        for _ in 0..<2 {
            #expect(try tail.advance(path))
            #expect(tail.records == 3 && tail.samples == 6 && tail.byID[1]?.map(\.1) == [0, 1, 2])
            #expect(tail.stopped?.hasPrefix("undecodable record 3") == true, "\(tail.stopped ?? "")")
        }
    }

    /// Starting a segment hands the last one back still open — the writer's thread never waits for its
    /// fdatasync — and the sealer's `flushAndClose` closes it once, with every record in it.
    @Test func aNewSegmentHandsTheLastBackForTheSealerToFlush() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let w = LogWriter(dataDir: dir)
        #expect(try w.start(seq: 1) == nil, "no segment before the first")
        for i in 0..<20 { try w.appendTick(Int64(i) * 1000, ids: [1, 2], values: [Double(i), 7]) }
        let finished = try #require(try w.start(seq: 2))
        let first = LogSegment.path(dir, 1)
        func descriptors(of path: String) throws -> Int {
            try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")
                .filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0)) == path }.count
        }
        #expect(try descriptors(of: first) == 1, "still open until the sealer flushes it")
        finished.flushAndClose()
        finished.flushAndClose() // a second call does nothing
        #expect(try descriptors(of: first) == 0)
        let scan = try LogSegment.scan(first) { _, _, _ in }
        #expect(scan.damage == nil && scan.records == 20)
        try w.closeSegment()
    }

    @Test func logSegmentsSurviveTornTailsAndNameDamage() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let w = LogWriter(dataDir: dir)
        _ = try w.start(seq: 7)
        for i in 0..<50 { try w.appendTick(Int64(i) * 1000, ids: [1, 2, 3], values: [Double(i), 5, Double(i) / 3]) }
        try w.closeSegment()
        let path = LogSegment.path(dir, 7)
        var n = 0
        let full = try LogSegment.scan(path) { _, _, _ in n += 1 }
        #expect(full.damage == nil && full.records == 50 && n == 150)
        // A torn tail: everything before it is read, the damage is described.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count - 3).write(to: URL(fileURLWithPath: path))
        let torn = try LogSegment.scan(path) { _, _, _ in }
        #expect(torn.records == 49 && torn.damage?.contains("torn") == true)
        // A flipped byte in the middle: records before it survive, the checksum names the place.
        var flipped = bytes
        flipped[bytes.count / 2] ^= 1
        try flipped.write(to: URL(fileURLWithPath: path))
        let bad = try LogSegment.scan(path) { _, _, _ in }
        #expect(bad.records < 50 && bad.records > 10 && bad.damage?.contains("byte") == true)
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try LogSegment.scan(path) { _, _, _ in }.damage != nil)
    }
}

extension Double {
    func rounded(toPlaces p: Int) -> Double {
        let m = (0..<p).reduce(1.0) { x, _ in x * 10 }
        return (self * m).rounded() / m
    }
}

extension ChunkTests {
    /// Flat residuals (constants, steady counters) store seeds only; every length and order round-trips.
    @Test func flatAndShortDecimalColumns() throws {
        for n in 1...6 {
            for make in [{ (_: Int) in 7.0 }, { Double($0) * 2.5 }, { Double($0 * $0) }, { Double($0 % 2) }] {
                try roundTrip((0..<n).map { (Int64($0) * 1000, make($0)) })
            }
        }
        #expect(try ChunkCodec.encode((0..<3600).map { (Int64($0) * 1000, 100 + Double($0) * 0.25) }).count < 24)
    }
}

/// The read caches keep what readers came back for since the last sweep (`run` sweeps at each seal) and
/// drop the rest, as well as evicting the least recently used when full.
@Suite struct ReadCacheSweepTests {
    @Test func aSweepDropsWhatWasNotReadSinceTheLast() {
        func key(_ id: Int64) -> ChunkCache.Key { ChunkCache.Key(id: id, minT: 0, maxT: 10, count: 2, bytes: 8, series: 1) }
        var chunks = ChunkCache(capacity: 1_000)
        chunks.put(key(1), SampleColumns([(0, 1), (10, 2)]))
        chunks.put(key(2), SampleColumns([(0, 3), (10, 4)]))
        chunks.sweep() // both were added since the start
        #expect(chunks.held == 4)
        #expect(chunks.get(key(1)) != nil)
        chunks.sweep() // the second was not read since the first sweep
        #expect(chunks.held == 2 && chunks.get(key(2)) == nil && chunks.get(key(1)) != nil)
        chunks.sweep()
        chunks.sweep() // nothing read in between
        #expect(chunks.held == 0 && chunks.get(key(1)) == nil)

        var rows = RowDataCache(capacityBytes: 1 << 20)
        let member = GroupBlock.Member(id: 1, count: 2, range: 0..<4)
        rows.put(key(1), [member], [1, 2, 3, 4])
        rows.put(key(2), [member], [5, 6])
        rows.sweep()
        #expect(rows.held == 6)
        #expect(rows.get(key(2))?.data == [5, 6])
        rows.sweep()
        #expect(rows.held == 2 && rows.get(key(1)) == nil)
    }
}
