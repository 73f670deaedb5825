import TwinCore
import TwinStorage

/// A hub's side of the sync protocol: applies agents' batches to the hub's store. Each host's series get a
/// `host` label; its entities are keyed `HOST/KEY` and carry a `host` attribute. The hub owns the cursor:
/// per host, the epoch and the last applied tick, advanced in the transaction that applies a batch.
///
/// Batches are applied in sequence order per host: a batch held already is acknowledged without change, a
/// batch past a gap is answered with where to resume. Not thread-safe: one applier per store.
public final class HubIngest {
    public let writer: TwinWriter

    struct HostState {
        var epoch: UInt64
        var appliedThrough: UInt64
        /// Agent series ref → hub series id.
        var series: [Int64: Int64]
        /// The tick decoder right after `appliedThrough`, when this process applied it (chained batches).
        var decoder: TickRecordDecoder?
        /// The time of the last applied tick.
        var lastTime: Int64?
        /// The agent's series definitions met since this process began applying the host's chain (which
        /// starts standing alone): enough to encode any batch of the chain standing alone.
        var definitions: [Int64: SeriesDefinition] = [:]
        /// Ticks applied since the host's last outbox row standing alone (nil: none this process wrote).
        var sinceStandalone: UInt64?
        /// The last applied tick, as decoded (for ``newestStandingAlone(host:)``).
        var lastTick: TickChange?
        /// After a rewind, the cursor before it: ticks up to here are applied again for their samples only
        /// (their versions are held already).
        var replayThrough: UInt64?
    }

    /// Whether applied batches are kept in the store's outbox (for upstream hubs and followers).
    public var keepsOutbox = true
    /// A host's outbox rows are chained on the row before at most this many ticks; then one row is
    /// written standing alone, so a reader starting anywhere decodes from a row not far back.
    public var standaloneEvery: UInt64 = 600

    private var hosts: [String: HostState] = [:]

    /// What applying a batch did, or what the sender should do instead.
    public enum Outcome: Equatable, Sendable {
        /// Applied; the cursor is at the range's end.
        case applied(ClosedRange<UInt64>, samples: Int)
        /// Held already; the cursor did not move. Acknowledge and go on.
        case duplicate(ClosedRange<UInt64>)
        /// Earlier ticks are missing: send from `resumeAt` (in `epoch`).
        case gap(epoch: UInt64, resumeAt: UInt64)
        /// Chained on a tick the hub cannot decode from (it restarted, or the base was never applied):
        /// send the range again standing alone, from `resumeAt`.
        case needBase(resumeAt: UInt64)
        /// Another hub sharing this hub's database writes the host: push there (or here again later).
        case elsewhere
    }

    /// `writer` is opened by the hub (`open()`); its open versions are loaded here.
    public init(writer: TwinWriter) throws {
        self.writer = writer
        try writer.store.checkpointEvery(pages: 16_384) // 64 MiB: checkpoints once every few groups
        try writer.loadOpenVersions()
        for c in try writer.store.remoteCursors() {
            hosts[c.host] = HostState(epoch: c.epoch, appliedThrough: c.appliedThrough,
                                      series: try writer.store.remoteSeries(host: c.host, epoch: c.epoch), lastTime: c.lastTime)
        }
    }

    /// A host's cursor: its epoch and last applied tick.
    public func cursor(host: String) -> (epoch: UInt64, appliedThrough: UInt64)? {
        hosts[host].map { ($0.epoch, $0.appliedThrough) }
    }

    /// Whether this hub writes `host` (``TwinWriter/claim(host:)``). Having just taken it, the host's cursor
    /// and open versions are read again when its stored cursor is not where this hub left it: another hub
    /// applied ticks meanwhile.
    public func claim(host: String) throws -> Bool {
        switch try writer.claim(host: host) {
        case .held: return true
        case .elsewhere: return false
        case .taken:
            do {
                let stored = try storedCursor(host: host)
                let mine = hosts[host]
                guard stored?.epoch != mine?.epoch || stored?.appliedThrough != mine?.appliedThrough else { return true }
                try writer.reloadOpenVersions(host: host)
                hosts[host] = try stored.map {
                    HostState(epoch: $0.epoch, appliedThrough: $0.appliedThrough, series: try writer.store.remoteSeries(host: host, epoch: $0.epoch), lastTime: $0.lastTime)
                }
                return true
            } catch {
                writer.release(host: host) // not written with a stale state: taken again at the next ask
                throw error
            }
        }
    }

    /// `host`'s cursor as stored (by whichever hub applied its ticks last).
    public func storedCursor(host: String) throws -> RemoteCursor? {
        try writer.store.remoteCursor(host: host)
    }

    /// Every host's cursor.
    public func cursors() -> [(host: String, epoch: UInt64, appliedThrough: UInt64)] {
        hosts.sorted { $0.key < $1.key }.map { ($0.key, $0.value.epoch, $0.value.appliedThrough) }
    }

    /// The time of the last tick applied for `host`.
    public func lastTime(host: String) -> Int64? { hosts[host]?.lastTime }

    /// Applies one encoded batch from `host`'s agent. Throws ``SyncError`` for a batch that is damaged,
    /// names another host, or references series it never defined; nothing is applied then.
    public func apply(_ bytes: [UInt8], from host: String) throws -> Outcome {
        try applyGroup([(bytes, host)])[0].get()
    }

    /// Applies batches that arrived together, in order (a hub's group commit): each is checked and decoded
    /// as ``apply(_:from:)`` does — a refused batch gets its error, the others go on — and those to apply
    /// are written with one log record and one transaction. Throws (nothing applied) when that write fails.
    public func applyGroup(_ batches: [(bytes: [UInt8], host: String)]) throws -> [Result<Outcome, any Error>] {
        var staged: [String: HostState] = [:]
        var results = [Result<Outcome, any Error>](repeating: .failure(SyncError.invalid("not applied")), count: batches.count)
        var parts: [(index: Int, ticks: [RemoteTick], cursor: RemoteCursor, range: ClosedRange<UInt64>, samples: Int)] = []
        for (i, b) in batches.enumerated() {
            do {
                switch try prepare(b.bytes, from: b.host, staged: &staged) {
                case .done(let outcome): results[i] = .success(outcome)
                case .ready(let ticks, let cursor, let range, let samples): parts.append((i, ticks, cursor, range, samples))
                }
            } catch {
                results[i] = .failure(error)
            }
        }
        guard !parts.isEmpty else { return results }
        try writer.applyRemote(parts.map { ($0.ticks, $0.cursor) })
        for (host, state) in staged { hosts[host] = state }
        for p in parts { results[p.index] = .success(.applied(p.range, samples: p.samples)) }
        return results
    }

    /// What checking and decoding one batch gave: an outcome at once, or ticks to write.
    private enum Prepared {
        case done(Outcome)
        case ready(ticks: [RemoteTick], cursor: RemoteCursor, range: ClosedRange<UInt64>, samples: Int)
    }

    /// Checks and decodes one batch against the host's state as the batches before it in the group leave
    /// it (`staged`), which it advances; throws for a batch to refuse, leaving `staged` as it was.
    private func prepare(_ bytes: [UInt8], from host: String, staged: inout [String: HostState]) throws -> Prepared {
        let h = try SyncCodec.header(bytes)
        guard h.host == host else { throw SyncError.invalid("a batch of host \(h.host) pushed as \(host)") }
        guard let range = h.range else { throw SyncError.invalid("an empty batch") }
        if staged[host] == nil, try !claim(host: host) { return .done(.elsewhere) }
        var state = staged[host] ?? hosts[host] ?? HostState(epoch: h.epoch, appliedThrough: 0, series: [:])
        if state.epoch != h.epoch {
            // A new store on the host (wiped or replaced): its history starts again at 1.
            guard h.firstSeq == 1 else { return .done(.gap(epoch: h.epoch, resumeAt: 1)) }
            state = HostState(epoch: h.epoch, appliedThrough: 0, series: [:])
        }
        if range.upperBound <= state.appliedThrough { return .done(.duplicate(range)) }
        guard range.lowerBound <= state.appliedThrough + 1 else { return .done(.gap(epoch: state.epoch, resumeAt: state.appliedThrough + 1)) }

        let decoded: (batch: SyncBatch, state: TickRecordDecoder)
        if let base = h.baseSeq {
            guard base == state.appliedThrough, let decoder = state.decoder else { return .done(.needBase(resumeAt: state.appliedThrough + 1)) }
            decoded = try SyncCodec.decode(bytes, base: (base, decoder))
        } else {
            decoded = try SyncCodec.decode(bytes)
        }
        let batch = decoded.batch

        for d in batch.dictionary { state.definitions[d.ref] = d }
        // Stored, the cursor never goes back: a hub that restarts during a replay forgets the rewind, and the
        // agent's next reconciliation asks for it again.
        var cursor = RemoteCursor(host: host, epoch: state.epoch, appliedThrough: max(range.upperBound, state.replayThrough ?? 0),
                                  lastTime: batch.ticks.last?.time)
        if keepsOutbox { cursor.outbox = try outboxRow(bytes, batch: batch, range: range, state: &state) }
        // Thinned ticks (the agent's disk cap) become the host's gaps, one per run.
        for (i, t) in batch.ticks.enumerated() where t.thinned && t.seq > state.appliedThrough {
            if i > 0, batch.ticks[i - 1].thinned, !cursor.thinned.isEmpty {
                cursor.thinned[cursor.thinned.count - 1].to = t.time
            } else {
                cursor.thinned.append(RawGap(from: t.time, to: t.time, reason: "thinned at the agent (its disk cap): rollups only"))
            }
        }
        let fresh = batch.dictionary.filter { state.series[$0.ref] == nil }
        if !fresh.isEmpty {
            let ids = try writer.seriesIDs(for: fresh.map { (Self.hostKey($0.key, host: host), $0.type) })
            for (d, id) in zip(fresh, ids) { cursor.newSeries[d.ref] = id }
        }
        var ticks: [RemoteTick] = []
        ticks.reserveCapacity(batch.ticks.count)
        for t in batch.ticks where t.seq > state.appliedThrough {
            var ids: [Int64] = []
            ids.reserveCapacity(t.refs.count)
            for ref in t.refs {
                guard let id = cursor.newSeries[ref] ?? state.series[ref] else {
                    throw SyncError.invalid("tick \(t.seq) uses series \(ref), which no applied batch of epoch \(String(state.epoch, radix: 16)) defines")
                }
                ids.append(id)
            }
            if let replay = state.replayThrough, t.seq <= replay {
                ticks.append(RemoteTick(time: t.time, ids: ids, values: t.values, opened: [], closed: []))
                continue
            }
            ticks.append(RemoteTick(time: t.time, ids: ids, values: t.values,
                                    opened: t.opened.map { Self.hostEntity($0, host: host) },
                                    closed: t.closed.map { ($0.kind, Self.hostKey($0.key, host: host)) }))
        }
        state.series.merge(cursor.newSeries) { _, new in new }
        state.appliedThrough = range.upperBound
        if let replay = state.replayThrough, range.upperBound >= replay { state.replayThrough = nil }
        state.decoder = decoded.state
        state.lastTime = batch.ticks.last?.time ?? state.lastTime
        state.lastTick = batch.ticks.last ?? state.lastTick
        staged[host] = state
        return .ready(ticks: ticks, cursor: cursor, range: range, samples: ticks.reduce(0) { $0 + $1.ids.count })
    }

    /// The last tick applied for `host` as a batch standing alone, its samples only (a relay's live lane);
    /// nil when this process has applied none or lacks a series definition.
    public func newestStandingAlone(host: String) -> SyncBatch? {
        guard let s = hosts[host], let t = s.lastTick else { return nil }
        let tick = TickChange(seq: t.seq, time: t.time, refs: t.refs, values: t.values)
        return try? Self.standingAlone(SyncBatch(host: host, epoch: s.epoch, ticks: [tick]), definitions: s.definitions)
    }

    /// Takes `host`'s cursor back to `through` (reconciliation found later ticks that differ), so its agent
    /// sends them again: their samples the hub lacks are applied, their versions skipped up to where the
    /// cursor was. Only in memory (see `apply`). Nil when the hub holds another epoch of the host or none.
    public func rewind(host: String, epoch: UInt64, to through: UInt64) -> (epoch: UInt64, appliedThrough: UInt64)? {
        guard var state = hosts[host], state.epoch == epoch else { return nil }
        if through < state.appliedThrough {
            state.replayThrough = max(state.replayThrough ?? 0, state.appliedThrough)
            state.appliedThrough = through
            state.decoder = nil
            hosts[host] = state
        }
        return (state.epoch, state.appliedThrough)
    }

    /// The outbox row of an applied batch: the batch as received, or re-encoded standing alone when the
    /// host's rows have been chained for `standaloneEvery` ticks (or this process has written none yet).
    private func outboxRow(_ bytes: [UInt8], batch: SyncBatch, range: ClosedRange<UInt64>, state: inout HostState) throws -> OutboxRow {
        var encoded = bytes
        var standalone = batch.baseSeq == nil
        if !standalone, state.sinceStandalone.map({ $0 + UInt64(range.count) > standaloneEvery }) ?? true {
            encoded = try SyncCodec.encode(try Self.standingAlone(batch, definitions: state.definitions)).bytes
            standalone = true
        }
        state.sinceStandalone = standalone ? UInt64(range.count) : state.sinceStandalone! + UInt64(range.count)
        return OutboxRow(host: batch.host, epoch: batch.epoch, firstSeq: range.lowerBound, lastSeq: range.upperBound,
                         standalone: standalone, appliedAt: TwinTime.nowMillis(), batch: encoded)
    }

    /// `batch` without its base: its dictionary defines every series its ticks use.
    public static func standingAlone(_ batch: SyncBatch, definitions: [Int64: SeriesDefinition]) throws -> SyncBatch {
        var used = Set<Int64>()
        for t in batch.ticks { used.formUnion(t.refs) }
        let dictionary = try used.sorted().map { ref in
            guard let d = definitions[ref] else { throw SyncError.invalid("series \(ref) of host \(batch.host) has no definition to send it standing alone") }
            return d
        }
        return SyncBatch(host: batch.host, epoch: batch.epoch, dictionary: dictionary, ticks: batch.ticks)
    }

    /// A series of `host` as the hub stores it: with a `host` label.
    public static func hostKey(_ key: SeriesKey, host: String) -> SeriesKey {
        var pairs = key.labels.pairs.filter { $0.name != "host" }
        pairs.append(Label("host", host))
        return SeriesKey(key.metric, Labels(pairs))
    }

    /// An entity key of `host` as the hub stores it.
    public static func hostKey(_ key: String, host: String) -> String { host + "/" + key }

    static func hostEntity(_ e: Entity, host: String) -> Entity {
        var attrs = e.attributes
        attrs["host"] = .string(host)
        return Entity(kind: e.kind, key: hostKey(e.key, host: host), attributes: attrs)
    }
}
