import Dispatch
import Synchronization
import Metrics
import TwinCore
import TwinSecurity
import TwinServer
import TwinStorage
import TwinSync

extension SyncStreamDecompressor: SyncStreamDecoder {}
extension SyncStreamCompressor: SyncStreamEncoder {}

/// Rewrites the state changes of one host's batch before they leave for another store: the host, the
/// versions opened and the entities closed.
public typealias StateRewrite = @Sendable (_ host: String, _ opened: inout [Entity], _ closed: inout [EntityRef]) -> Void

extension DataPolicy {
    /// The rewrite of a batch's state changes this policy asks for before they leave for another store
    /// (``SyncCodec/rewritingState(_:_:)``): a relay's `--forward-policy`, a follower token's policy.
    /// Connections' peers are named from `addresses` first (`remote_host`), while their addresses are
    /// still readable.
    public func stateRewrite(keys: KeyRing, addresses: FleetAddressBook) -> StateRewrite {
        { host, opened, closed in
            addresses.annotate(&opened, policy: self, localHost: host)
            var refs = closed.map { (kind: $0.kind, key: $0.key) }
            forwarding(opened: &opened, closed: &refs, keys: keys)
            closed = refs.map { EntityRef(kind: $0.kind, key: $0.key) }
        }
    }
}

/// A hub's ``SyncReceiver``: applies pushed batches to the hub's store through ``HubIngest``, one at a
/// time on a queue of its own (the store has one writer; SQLite and the log block).
public final class HubReceiver: SyncReceiver, @unchecked Sendable { // `ingest` only on `queue`
    private let ingest: HubIngest
    private let queue = DispatchQueue(label: "hosttwin-hub-ingest")

    /// `writer` is the hub store's writer, opened.
    /// The hub's store, for reads off the queue.
    private let store: TwinStore

    /// This hub's datacenter (`serve --datacenter`), recorded for the hosts whose agents push here.
    private let datacenter: String?
    /// The datacenter last recorded per host (on `queue`).
    private var datacenters: [String: String] = [:]
    /// The label of remote-written series that names their host (`serve --remote-write-host-label`).
    public var remoteWriteHostLabel = "instance"
    /// Metric types named by remote_write metadata so far (on `queue`).
    private var remoteWriteTypes: [String: MetricType] = [:]
    /// Series ids by key for the live lane (off the queue).
    let previewSeries = PreviewSeries()
    /// Each host's newest tick for this hub's relays (`serve --push` sets it; nil: no relay, nothing kept).
    public var tap: LiveTap?
    /// The fleet's addresses, to name connections' peers before a policy hashes their addresses.
    public let addresses: FleetAddressBook
    /// Per host, the newest tick time queryable here (live lane or applied): freshness is measured for
    /// ticks newer than it, the present as a reader sees it.
    private let newest = Mutex<[String: Int64]>([:])

    /// Records how long after `time` a tick of `host` became queryable here, when it is the newest so far.
    func fresh(host: String, time: Int64) {
        guard newest.withLock({ n -> Bool in
            guard time > n[host] ?? .min else { return false }
            n[host] = time
            return true
        }) else { return }
        // From a tick's time to queryable here (all hosts): the freshness target's figure.
        Timer(label: "hosttwin_sync_freshness_seconds").recordMilliseconds(TwinTime.nowMillis() - time)
    }

    public init(writer: TwinWriter, datacenter: String? = nil) throws {
        ingest = try HubIngest(writer: writer)
        store = writer.store
        addresses = FleetAddressBook(store: writer.store)
        self.datacenter = datacenter
        for c in try store.remoteCursors() { datacenters[c.host] = c.datacenter }
    }

    public func reconcile(host: String, epoch: UInt64, ranges: [SyncRange], stateAt: Int64?) throws -> SyncReconciliation {
        guard let c = queue.sync(execute: { ingest.cursor(host: host) }) else { throw SyncConflict("this hub holds nothing of \(host)") }
        guard c.epoch == epoch else {
            throw SyncConflict("this hub holds epoch \(String(c.epoch, radix: 16)) of \(host), not \(String(epoch, radix: 16))")
        }
        if let r = ranges.first(where: { $0.last > c.appliedThrough }) {
            throw SyncConflict("ticks \(r.first)–\(r.last) of \(host) are not all applied here (through \(c.appliedThrough))")
        }
        // Read off the queue: what is applied up to the cursor does not change.
        let reader = try TwinDigest.Reader(store: store, host: host)
        return SyncReconciliation(ranges: try ranges.map { try reader.digest(from: $0.from, until: $0.to) },
                                  state: try stateAt.map { try reader.state(at: $0) })
    }

    public func rewind(host: String, epoch: UInt64, to through: UInt64) throws -> SyncCursor {
        guard let c = queue.sync(execute: { ingest.rewind(host: host, epoch: epoch, to: through) }) else {
            throw SyncConflict("this hub holds no epoch \(String(epoch, radix: 16)) of \(host) to rewind")
        }
        Counter(label: "hosttwin_sync_rewinds_total", dimensions: [("host", host)]).increment()
        return SyncCursor(host: host, epoch: String(c.epoch, radix: 16), appliedThrough: c.appliedThrough)
    }

    /// Where this hub's copy of `host` stands. When hubs share the database, asking takes the host's lock
    /// if it is free; when another hub holds it, that hub's cursor as stored, marked `standby`.
    public func cursor(host: String) throws -> SyncCursor? {
        try queue.sync { () throws -> SyncCursor? in
            guard try ingest.claim(host: host) else {
                return try ingest.storedCursor(host: host).map {
                    SyncCursor(host: host, epoch: String($0.epoch, radix: 16), appliedThrough: $0.appliedThrough, standby: true)
                } ?? SyncCursor(host: host, epoch: "0", appliedThrough: 0, standby: true)
            }
            return ingest.cursor(host: host).map { SyncCursor(host: host, epoch: String($0.epoch, radix: 16), appliedThrough: $0.appliedThrough) }
        }
    }

    public func fleetAddresses() -> [String: String] { addresses.addresses() }

    public func cursors() throws -> [SyncCursor] {
        queue.sync { ingest.cursors() }.map { SyncCursor(host: $0.host, epoch: String($0.epoch, radix: 16), appliedThrough: $0.appliedThrough) }
    }

    public func hello(host: String?, version: Int, agentClock: Int64?, latest: UInt64?) throws {
        guard SyncCodec.readable.contains(where: { Int($0) == version }) else {
            throw TwinError.badInput("sync protocol version \(version) is not spoken here; this hub speaks versions \(SyncCodec.readable.lowerBound)–\(SyncCodec.readable.upperBound)")
        }
        guard let host else { return }
        let offset = agentClock.map { TwinTime.nowMillis() - $0 }
        try queue.sync {
            try store.recordHello(host: host, clockOffset: offset, latest: latest, datacenter: datacenter)
            if let datacenter { datacenters[host] = datacenter }
        }
    }

    /// A batch waiting for the next group commit, with whoever waits for its acknowledgement.
    private struct Pending {
        var batch: [UInt8]
        var named: String?
        var relayed: String?
        var done: CheckedContinuation<SyncAck, Never>
    }
    /// Batches pushed while the queue was busy, and whether a drain is scheduled.
    private let pending = Mutex<(batches: [Pending], draining: Bool)>(([], false))
    /// How long a sender whose host another hub writes waits before asking again.
    static let elsewhereWaitMs = 5_000
    /// The most batches applied in one group (one log record, one transaction).
    static let groupLimit = 512

    /// The hub-wide limit of catch-up ticks applied per second (`serve --catch-up-rate`; nil: none).
    /// Batches of one tick (live) never wait; a longer batch waits until the budget has room for its
    /// ticks (``catchUpWait(_:)``), which holds back its session (and so its sender) while every live
    /// tick goes on.
    public var catchUpLimit: RateLimiter?

    public func catchUpWait(_ batch: [UInt8]) -> (wait: Duration, host: String)? {
        guard let limit = catchUpLimit, let h = try? SyncCodec.header(batch), h.tickCount > 1, let wait = limit.reserve(h.tickCount) else { return nil }
        return (wait, h.host)
    }

    public func apply(_ batch: [UInt8], host named: String?, datacenter relayed: String?) async -> SyncAck {
        await withCheckedContinuation { done in
            let schedule = pending.withLock { p -> Bool in
                p.batches.append(Pending(batch: batch, named: named, relayed: relayed, done: done))
                defer { p.draining = true }
                return !p.draining
            }
            if schedule { queue.async { [self] in drain() } }
        }
    }

    /// Applies what is pending in groups until nothing is (on `queue`): the batches of every session that
    /// arrived meanwhile share a log write and a transaction, which is what lets one core keep up with many
    /// agents.
    private func drain() {
        while true {
            let group = pending.withLock { p -> [Pending] in
                let n = min(p.batches.count, Self.groupLimit)
                if n == 0 { p.draining = false }
                defer { p.batches.removeFirst(n) }
                return Array(p.batches.prefix(n))
            }
            if group.isEmpty { return }
            // A relay's batches name their hosts; an agent's are checked against the one it may push.
            let hosts = group.map { $0.named ?? ((try? SyncCodec.header($0.batch))?.host ?? "") }
            // A relay's datacenter for each host before its samples show: a token confined to that
            // datacenter must see them as soon as anyone can.
            for (item, host) in zip(group, hosts) { try? record(datacenter: item.relayed, of: host) } // else named again with the host's next batch
            let results: [Result<HubIngest.Outcome, any Error>]
            do { results = try ingest.applyGroup(zip(group, hosts).map { ($0.batch, $1) }) } catch {
                results = Array(repeating: .failure(error), count: group.count)
            }
            var acks: [SyncAck] = []
            for ((item, host), result) in zip(zip(group, hosts), results) {
                var ack: SyncAck
                switch result {
                case .success(.applied(let r, let n)):
                    ack = SyncAck(outcome: "applied", first: r.lowerBound, last: r.upperBound, samples: n)
                    applied(host: host, ticks: Int(r.count))
                case .success(.duplicate(let r)): ack = SyncAck(outcome: "duplicate", first: r.lowerBound, last: r.upperBound)
                case .success(.gap(let epoch, let resume)): ack = SyncAck(outcome: "gap", resumeAt: resume, epoch: String(epoch, radix: 16))
                case .success(.needBase(let resume)): ack = SyncAck(outcome: "need_base", resumeAt: resume)
                case .success(.elsewhere):
                    ack = SyncAck(outcome: "elsewhere", message: "another hub sharing this hub's database writes \(host)", waitMs: Self.elsewhereWaitMs)
                case .failure(let error): ack = SyncAck(outcome: "refused", message: "\(error)")
                }
                if item.named == nil { ack.host = host }
                acks.append(ack)
            }
            if acks.contains(where: { $0.outcome == "applied" }) { FaultPoints.check(.hubAfterApply) }
            for (item, ack) in zip(group, acks) { item.done.resume(returning: ack) }
        }
    }

    /// After a batch of `host` was applied: its lag and freshness (`/metrics`).
    private func applied(host: String, ticks: Int) {
        // How far the hub's copy is behind the host's clock, per host.
        if let t = ingest.lastTime(host: host) {
            store.preview.advance(host: host, through: t)
            let lag = TwinTime.nowMillis() - t
            Gauge(label: "hosttwin_sync_lag_seconds", dimensions: [("host", host)]).record(Double(lag) / 1000)
            fresh(host: host, time: t)
            if let tap, tap.wanted, let batch = ingest.newestStandingAlone(host: host), let bytes = try? SyncCodec.encode(batch).bytes {
                tap.offer(host: host, batch: bytes)
            }
        }
        Counter(label: "hosttwin_sync_applied_ticks_total", dimensions: [("host", host)]).increment(by: ticks)
    }

    /// Records the datacenter a relay named for `host`, when it is news (on `queue`).
    private func record(datacenter relayed: String?, of host: String) throws {
        guard let relayed, datacenters[host] != relayed else { return }
        try store.recordHello(host: host, clockOffset: nil, latest: nil, datacenter: relayed)
        datacenters[host] = relayed
    }

    public func streamDecoder(for encoding: String) -> (any SyncStreamDecoder)? {
        encoding == "zstd" ? SyncStreamDecompressor() : nil
    }

    public func streamEncoder() -> any SyncStreamEncoder { SyncStreamCompressor() }

    /// This hub's key ring, for hashes a follower's token policy asks for (`serve` sets it).
    public var keys: KeyRing?

    public func follow(held: [SyncCursor], after: Int64, policy: DataPolicy?) throws -> any SyncOutboxSession {
        var map: [String: (epoch: UInt64, through: UInt64)] = [:]
        for c in held { map[c.host] = (UInt64(c.epoch, radix: 16) ?? 0, c.appliedThrough) }
        var rewrite: StateRewrite?
        if let policy, policy.changesValues {
            guard let keys else { throw TwinError.unavailable("this hub has no key ring to apply the token's policy with") }
            rewrite = policy.stateRewrite(keys: keys, addresses: addresses)
        }
        return OutboxSession(reader: try OutboxReader(store: ingest.writer.store, held: map, after: after), rewrite: rewrite,
                             rollups: policy?.minuteRollups == true ? MinuteRollups() : nil)
    }

    /// A follower's read of the outbox: rows as the reader gives them, through the token's policy if any
    /// (its state rewrite, and its samples as minute rollups).
    final class OutboxSession: SyncOutboxSession {
        var reader: OutboxReader
        let rewrite: StateRewrite?
        var rollups: MinuteRollups?
        init(reader: OutboxReader, rewrite: StateRewrite?, rollups: MinuteRollups?) {
            self.reader = reader
            self.rewrite = rewrite
            self.rollups = rollups
        }
        func next() async throws -> [(id: Int64, batch: [UInt8])] {
            try reader.next().map { item in
                let bytes = try rollups?.rewrite(item.bytes) ?? item.bytes
                return (item.id, try rewrite.map { r in try SyncCodec.rewritingState(bytes) { r(item.host, &$0, &$1) } } ?? bytes)
            }
        }
    }

    /// Seals what the hub holds and releases the store (at shutdown).
    public func finish() throws {
        try queue.sync { try ingest.writer.finish(now: TwinTime.nowMillis()) }
    }
}

extension HubReceiver {
    public func preview(_ batch: [UInt8], host named: String?, datacenter relayed: String?) async throws -> Int {
        let h = try SyncCodec.header(batch)
        if let named, h.host != named { throw SyncError.invalid("a batch of host \(h.host) pushed as \(named)") }
        guard h.baseSeq == nil else { throw SyncError.invalid("a live-lane batch stands alone (this one has a base)") }
        let decoded = try SyncCodec.decode(batch).batch
        guard let tick = decoded.ticks.last else { return 0 }
        let host = h.host
        var definitions: [Int64: (key: SeriesKey, type: MetricType)] = [:]
        for d in decoded.dictionary { definitions[d.ref] = (HubIngest.hostKey(d.key, host: host), d.type) }
        var ids = try tick.refs.map { ref -> Int64? in
            guard let d = definitions[ref] else { throw SyncError.invalid("live tick \(tick.seq) uses series \(ref), which its batch does not define") }
            return previewSeries.id(d.key)
        }
        // Series the hub does not hold yet (a host new here, or new series) are created as the in-order lane
        // would create them, on the writer's queue; a relay's datacenter for the host is recorded first.
        let missing = zip(tick.refs, ids).filter { $0.1 == nil }.map { definitions[$0.0]! }
        if !missing.isEmpty {
            let created = try await withCheckedThrowingContinuation { (done: CheckedContinuation<[Int64], any Error>) in
                queue.async { [self] in
                    done.resume(with: Result {
                        try record(datacenter: relayed, of: host)
                        return try ingest.writer.seriesIDs(for: missing.map { ($0.key, $0.type) })
                    })
                }
            }
            previewSeries.learn(zip(missing.map(\.key), created))
            ids = tick.refs.map { previewSeries.id(definitions[$0]!.key) }
        }
        let known = zip(ids, tick.values).compactMap { id, v in id.map { ($0, v) } }
        let kept = store.preview.add(host: host, time: tick.time, ids: known.map(\.0), values: known.map(\.1))
        if kept > 0 { fresh(host: host, time: tick.time) }
        tap?.offer(host: host, batch: batch)
        return kept
    }
}

/// Series ids of the hub's store by key, for live-lane ticks (which name series by key).
final class PreviewSeries: Sendable {
    private let known = Mutex<[SeriesKey: Int64]>([:])

    func id(_ key: SeriesKey) -> Int64? { known.withLock { $0[key] } }

    func learn(_ pairs: some Sequence<(SeriesKey, Int64)>) {
        known.withLock { k in for (key, id) in pairs { k[key] = id } }
    }
}

/// A token bucket shared by many callers: ``reserve(_:)`` takes units now and says how long to wait
/// first so that, over time, no more than `perSecond` are taken a second (bursts up to one second's worth).
public final class RateLimiter: Sendable {
    public let perSecond: Double
    private let bucket: Mutex<(tokens: Double, at: ContinuousClock.Instant)>

    public init(perSecond: Int) {
        self.perSecond = Double(max(perSecond, 1))
        bucket = Mutex((self.perSecond, .now))
    }

    /// Takes `units`; the wait before using them, nil when there is none.
    public func reserve(_ units: Int) -> Duration? {
        bucket.withLock { b in
            let now = ContinuousClock.now
            let elapsed = now - b.at
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            b.tokens = min(perSecond, b.tokens + seconds * perSecond) - Double(units)
            b.at = now
            return b.tokens >= 0 ? nil : .milliseconds(Int64((-b.tokens / perSecond * 1000).rounded(.up)))
        }
    }
}

/// Prometheus remote_write into the hub: decoded off the queue, applied on it like a pushed batch.
extension HubReceiver: RemoteWriteReceiver {
    public func remoteWrite(_ body: [UInt8]) async throws -> RemoteWriteSummary {
        let request: RemoteWriteCodec.Request
        do { request = try RemoteWriteCodec.decode(body) } catch { throw TwinError.badInput("\(error)") }
        let result: RemoteWriteResult = try await withCheckedThrowingContinuation { done in
            queue.async { [self] in
                done.resume(with: Result {
                    try ingest.applyRemoteWrite(request, hostLabel: remoteWriteHostLabel, types: &remoteWriteTypes, datacenter: datacenter)
                })
            }
        }
        Counter(label: "hosttwin_remote_write_received_samples_total").increment(by: result.samples)
        Counter(label: "hosttwin_remote_write_not_newer_samples_total").increment(by: result.notNewer)
        Counter(label: "hosttwin_remote_write_refused_series_total").increment(by: result.refused)
        if request.staleMarkers > 0 { Counter(label: "hosttwin_remote_write_stale_markers_total").increment(by: request.staleMarkers) }
        return RemoteWriteSummary(samples: result.samples, refused: result.refused, refusals: result.refusals)
    }
}
