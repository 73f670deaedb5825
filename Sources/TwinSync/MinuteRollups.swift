import TwinCore
import TwinStorage

/// Samples at one point a minute, for a destination whose data policy takes rollups only
/// (`resolution 1m`; docs/format/sync.md, "Relay and observer"). Batches keep every tick — positions stay
/// gapless, state changes pass as they are — but a tick carries samples only when it is the first of a
/// new minute, and then it carries the minute before it: a counter's last value, a gauge's (or untyped
/// series') mean over the minute's ticks. Each batch is re-encoded standing alone with the dictionary its
/// origin carried, so the destination learns every series as it would from the raw stream.
///
/// One instance per session, fed each host's batches in order (as ``OutboxReader`` gives them: a host's
/// first batch of the session stands alone, the next ones chain on it). A session that starts inside a
/// minute aggregates that minute from its first tick on.
public struct MinuteRollups: Sendable {
    struct Minute: Sendable {
        var sum = 0.0, count = 0, last = Double.nan
    }
    struct HostState: Sendable {
        var epoch: UInt64
        var decoder: (seq: UInt64, state: TickRecordDecoder)?
        var minute: Int64?
        var points: [Int64: Minute] = [:]
        var counters: Set<Int64> = []
    }
    private var hosts: [String: HostState] = [:]

    public static let step: Int64 = 60_000

    public init() {}

    /// `bytes` (a batch as applied at this hub) with its samples replaced by the minute points.
    public mutating func rewrite(_ bytes: [UInt8]) throws -> [UInt8] {
        let header = try SyncCodec.header(bytes)
        var host = hosts[header.host].flatMap { $0.epoch == header.epoch ? $0 : nil } ?? HostState(epoch: header.epoch)
        let (batch, state) = try SyncCodec.decode(bytes, base: header.baseSeq == nil ? nil : host.decoder)
        if let last = batch.ticks.last { host.decoder = (last.seq, state) }
        for d in batch.dictionary where d.type == .counter { host.counters.insert(d.ref) }
        var out = batch
        out.baseSeq = nil
        for i in out.ticks.indices {
            let tick = out.ticks[i]
            let minute = tick.time >= 0 ? tick.time / Self.step : (tick.time + 1) / Self.step - 1
            var refs: [Int64] = [], values: [Double] = []
            if let m = host.minute, m != minute {
                for ref in host.points.keys.sorted() {
                    let p = host.points[ref]!
                    refs.append(ref)
                    values.append(host.counters.contains(ref) || p.count == 0 ? p.last : p.sum / Double(p.count))
                }
                host.points.removeAll(keepingCapacity: true)
            }
            host.minute = minute
            for (ref, value) in zip(tick.refs, tick.values) {
                var p = host.points[ref] ?? Minute()
                p.last = value
                if !value.isNaN {
                    p.sum += value
                    p.count += 1
                }
                host.points[ref] = p
            }
            out.ticks[i].refs = refs
            out.ticks[i].values = values
        }
        hosts[header.host] = host
        return try SyncCodec.encode(out).bytes
    }
}
