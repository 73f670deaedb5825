import Foundation
import TwinCore

/// The bulk ingest path: exposition text (Prometheus or OpenMetrics, with timestamps) in, batches of
/// samples into a ``TwinWriter`` out. `hosttwin import` uses it; so will the hub's ingest endpoint.
///
/// Series are recognised by the bytes of `name{labels}`: each distinct text is parsed into a
/// ``SeriesKey`` and looked up in the store once, then found by hash.
public final class BulkImporter {
    /// What an import did.
    public struct Stats: Sendable, Codable {
        public var lines = 0
        public var samples = 0
        public var rejected = 0
        public var badLines = 0
        public var series = 0
        public var bytes = 0
        public var minTime: Int64?
        public var maxTime: Int64?
        /// The first few problems, with line numbers.
        public var problems: [String] = []

        enum CodingKeys: String, CodingKey {
            case lines, samples, rejected, badLines = "bad_lines", series, bytes, minTime = "min_time", maxTime = "max_time", problems
        }
    }

    private let writer: TwinWriter
    /// Time given to samples without a timestamp.
    private let defaultTime: Int64
    private var ids: [UInt64: [(bytes: [UInt8], id: Int64)]] = [:]
    /// Series first seen in the pending batch: created together when it is written. Their samples carry
    /// `-(index + 1)` as id until then.
    private var newKeys: [(SeriesKey, MetricType)] = []
    private var newEntries: [(hash: UInt64, slot: Int)] = []
    private var types: [String: MetricType] = [:]
    /// `# HELP` texts read so far, written with the next batch when one changed.
    private var help: [String: String] = [:]
    private var helpChanged = false
    private var batch: [(Int64, Int64, Double)] = []
    private let batchSize: Int
    public private(set) var stats = Stats()
    private var lineBase = 0

    public init(writer: TwinWriter, defaultTime: Int64 = TwinTime.nowMillis(), batchSize: Int = 65_536) {
        self.writer = writer
        self.defaultTime = defaultTime
        self.batchSize = batchSize
        batch.reserveCapacity(batchSize)
    }

    /// Ingests whole lines (`bytes` must end at a line boundary); each full batch is durable on return.
    public func ingest(_ bytes: UnsafeRawBufferPointer) throws {
        var p = ExpositionParser(bytes)
        stats.bytes += bytes.count
        while true {
            let line: ExpositionParser.Line?
            do { line = try p.next() } catch {
                stats.badLines += 1
                note("\(error)".replacingOccurrences(of: "line \(p.lineNumber):", with: "line \(lineBase + p.lineNumber):"))
                continue
            }
            guard let line else { break }
            switch line {
            case .type(let name, let type): types[name] = type
            case .help(let name, let text): if help[name] != text { help[name] = text; helpChanged = true }
            case .sample(let range, let value, let time):
                let id: Int64
                do { id = try seriesID(UnsafeRawBufferPointer(rebasing: bytes[range])) } catch let e as TwinError {
                    stats.badLines += 1
                    note("line \(lineBase + p.lineNumber): \(e)")
                    continue
                }
                let t = time ?? defaultTime
                batch.append((id, t, value))
                if stats.minTime.map({ t < $0 }) ?? true { stats.minTime = t }
                if stats.maxTime.map({ t > $0 }) ?? true { stats.maxTime = t }
                if batch.count >= batchSize { try flushBatch() }
            }
        }
        lineBase += p.lineNumber
        stats.lines = lineBase
    }

    /// Writes the pending batch.
    public func flushBatch() throws {
        if helpChanged {
            try writer.recordHelp(help)
            helpChanged = false
        }
        guard !batch.isEmpty else { return }
        if !newKeys.isEmpty {
            let created = try writer.seriesIDs(for: newKeys)
            for (i, e) in newEntries.enumerated() { ids[e.hash]![e.slot].id = created[i] }
            for i in batch.indices where batch[i].0 < 0 { batch[i].0 = created[Int(-batch[i].0) - 1] }
            newKeys.removeAll(keepingCapacity: true)
            newEntries.removeAll(keepingCapacity: true)
        }
        let r = try writer.append(batch: batch)
        stats.samples += r.accepted
        stats.rejected += r.rejected
        if let why = r.firstRejection { note(why) }
        batch.removeAll(keepingCapacity: true)
    }

    private func note(_ s: String) {
        if stats.problems.count < 5 { stats.problems.append(s) }
    }

    private func seriesID(_ text: UnsafeRawBufferPointer) throws -> Int64 {
        let h = SeriesHash.fnv1a(text)
        if let list = ids[h] {
            for e in list where e.bytes.count == text.count && e.bytes.withUnsafeBytes({ memcmp($0.baseAddress!, text.baseAddress!, text.count) == 0 }) {
                return e.id
            }
        }
        let key = try SeriesKey.parse(String(decoding: text, as: UTF8.self))
        newKeys.append((key, MetricType.of(series: key.metric, families: types)))
        let id = -Int64(newKeys.count)
        ids[h, default: []].append((Array(text), id))
        newEntries.append((h, ids[h]!.count - 1))
        stats.series += 1
        return id
    }

    /// Imports a whole file, reading it in pieces cut at line boundaries; `progress` is called after each
    /// piece with the bytes done so far.
    public func importFile(_ path: String, progress: (Int) -> Void = { _ in }) throws {
        guard let fh = FileHandle(forReadingAtPath: path) else { throw TwinError.unavailable("cannot open \(path)") }
        defer { try? fh.close() }
        var carry: [UInt8] = []
        var done = 0
        while true {
            let piece: Data
            do { piece = try fh.read(upToCount: 8 << 20) ?? Data() } catch {
                throw TwinError.unavailable("cannot read \(path): \(error.localizedDescription)")
            }
            if piece.isEmpty { break }
            var buf = carry
            buf.append(contentsOf: piece)
            guard let lastNL = buf.lastIndex(of: 0x0A) else { carry = buf; continue }
            try buf.withUnsafeBytes { try ingest(UnsafeRawBufferPointer(rebasing: $0[0...lastNL])) }
            carry = Array(buf[(lastNL + 1)...])
            done += piece.count
            progress(done)
        }
        if !carry.isEmpty { try carry.withUnsafeBytes { try ingest($0) } }
        try flushBatch()
    }
}
