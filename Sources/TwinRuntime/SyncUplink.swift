import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TwinCore
import TwinServer
import TwinStorage
import TwinSync

/// An agent's push to one hub (docs/format/sync.md): asks the hub where to resume, then streams batches —
/// catch-up batches read from the store while behind, then each committed tick as it comes, chained on
/// the previous one — and reads the hub's acknowledgements. The store is the buffer: nothing is dropped
/// when the hub is away; the next session resumes where the hub says.
public final class SyncUplink: Service, TickSink, @unchecked Sendable { // mutable state behind `state`
    public struct Configuration: Sendable {
        public var host: String
        public var remote: RemoteTwin
        /// Ticks per catch-up batch.
        public var catchUpTicks = 1800
        /// Wait after a failed session, doubled up to `maxBackoff`.
        public var backoff: Duration = .milliseconds(500)
        /// 5 s: each second an agent waits after its hub came back is a second the hub's present is stale;
        /// a thousand agents retrying every 5 s (with jitter) is no load for a hub that is down.
        public var maxBackoff: Duration = .seconds(5)
        /// Reconciliation rounds during a session (one also follows each handshake).
        public var reconcileEvery: Duration = .seconds(600)
        /// The most ticks a second the catch-up lane sends (nil: as fast as the hub takes them); also the
        /// most per catch-up batch, so the rate is smooth.
        public var catchUpRate: Int? = 1000
        /// Whether the newest tick also goes on the live lane while the in-order lane is behind.
        public var liveLane = true
        /// Taught what the hub resolves of the fleet's addresses, every minute (an agent whose policy hashes
        /// peer addresses names peers first).
        public var addresses: FleetAddressBook?
        /// How long a shutdown waits for the hub to acknowledge what was committed.
        public var drainLimit: Duration = .seconds(5)

        public init(host: String, remote: RemoteTwin) {
            self.host = host
            self.remote = remote
        }
    }

    /// What the collection thread hands over and the sessions read.
    struct State {
        /// The newest committed tick, as stored.
        var latest: CommittedTick?
        /// The last tick the hub acknowledged (applied or held).
        var acked: UInt64 = 0
        /// The next tick the in-order lane sends.
        var next: UInt64 = 0
        /// Until when the hub said it is behind (a catch-up batch waits for its budget).
        var hubBehindUntil = ContinuousClock.now
        /// Whether a session's push stream is open (a shutdown then waits for the hub's acknowledgements).
        var connected = false
        /// Whether the hub said another hub sharing its database writes this host (logged once per change).
        var standby = false
        /// Wakes the session's live lane (each committed tick does while the in-order lane is behind).
        var wakeLive: AsyncStream<Void>.Continuation?
        /// Whether the live lane should send the newest tick now.
        var behind: Bool { latest.map { $0.seq >= next + SyncUplink.liveLead || ContinuousClock.now < hubBehindUntil } ?? false }
        var waiter: CheckedContinuation<Void, Never>?
        var woken = false
    }

    let store: TwinStore
    let configuration: Configuration
    let logger: Logger
    private let state = Mutex(State())
    /// The time this destination holds the store from (written to the store when it changes).
    private var heldFrom: Int64?
    /// What reconciliation has compared, across sessions.
    private let reconciler = Mutex(Reconciler())

    public init(store: TwinStore, configuration: Configuration, logger: Logger) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
    }

    /// The last tick the hub acknowledged.
    public var acknowledged: UInt64 { state.withLock { $0.acked } }

    // MARK: TickSink

    public func committed(_ tick: CommittedTick) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.latest = tick
            if s.behind { s.wakeLive?.yield() }
            s.woken = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }

    public func collectionStopped() { wake() }

    private func wake() {
        state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.woken = true
            defer { s.waiter = nil }
            return s.waiter
        }?.resume()
    }

    /// Waits for the next committed tick (or a wake-up), at most `limit`.
    private func nextTick(limit: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                await withTaskCancellationHandler {
                    await withCheckedContinuation { c in
                        let now = state.withLock { s -> Bool in
                            if s.woken { s.woken = false; return true }
                            s.waiter = c
                            return false
                        }
                        if now { c.resume() }
                    }
                } onCancel: { [self] in wake() }
            }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
        }
        state.withLock { $0.woken = false }
    }

    // MARK: Service

    public func run() async throws {
        let remote = configuration.remote
        await runSessions("push to \(remote.host):\(remote.port)", backoff: configuration.backoff, maxBackoff: configuration.maxBackoff,
                          logger: logger, drain: { [self] in await drain(within: configuration.drainLimit) }) { [self] in try await session() }
    }

    /// On shutdown (the collection has stopped by then: it is shut down first), waits at most `limit` for
    /// the hub to acknowledge the last committed tick, while a session is connected; what is left goes at
    /// the next start.
    private func drain(within limit: Duration) async {
        let deadline = ContinuousClock.now + limit
        while true {
            let (done, acked, last) = state.withLock { s in
                (!s.connected || s.latest.map { s.acked >= $0.seq } ?? true, s.acked, s.latest?.seq ?? 0)
            }
            if done { return }
            guard ContinuousClock.now < deadline else {
                logger.warning("stopping with ticks \(acked + 1)...\(last) not acknowledged by \(destination): they are sent at the next start")
                return
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// One push session: handshake, then batches until the connection fails or the hub asks to resume.
    private func session() async throws {
        // Not before this process has committed a tick: then it holds the store's writer lock (a second
        // agent on the same directory fails there and pushes nothing) and the store has an epoch.
        guard state.withLock({ $0.latest != nil }), let epoch = try store.epoch() else {
            await nextTick(limit: .seconds(1))
            return
        }
        let host = configuration.host
        let remote = configuration.remote
        let query = "host=" + (host.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? host)
        let latest = try store.lastTickSeq() // for the hub's backlog figure
        let hello = try await Task.detached { try remote.get("/api/v1/sync/cursor?\(query)&version=\(SyncCodec.version)&clock=\(TwinTime.nowMillis())&latest=\(latest)") }.value
        guard hello.status == 200, let cursor = try? JSONDecoder().decode(SyncCursor.self, from: Data(hello.body)) else {
            throw TwinError.unavailable("handshake refused (HTTP \(hello.status)): \(hello.text.prefix(300))")
        }
        // A hub claiming ticks this store never had (a hub of another life, or a broken one) holds none of
        // them: retention must not drop what it has not received.
        let held = cursor.epoch == String(epoch, radix: 16) ? min(cursor.appliedThrough, latest) : 0
        let standby = cursor.standby == true
        if state.withLock({ s in defer { s.standby = standby }; return s.standby != standby }) {
            logger.info(standby ? "\(remote.host):\(remote.port) shares its database with the hub that writes \(host) (through tick \(held) there); asking again every \(HubStandby.wait)"
                                : "\(remote.host):\(remote.port) writes \(host) now")
        }
        if standby {
            // The ticks the other hub applied are in the database this one shares: held for retention.
            state.withLock { $0.acked = held }
            try hold(after: held)
            try await Task.sleep(for: HubStandby.wait)
            return
        }
        if cursor.epoch == String(epoch, radix: 16), cursor.appliedThrough > latest {
            logger.warning("\(remote.host):\(remote.port) says it holds \(host) through tick \(cursor.appliedThrough), beyond this store's newest (\(latest)): sending from \(latest + 1)")
        }
        // The live lane runs from the handshake on, so the present is not held back by the reconciliation
        // round below nor by the backlog; it wakes when the in-order lane falls behind.
        let (behind, falling) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        state.withLock { $0.next = held + 1; $0.wakeLive = falling }
        let lane = configuration.liveLane ? Task { [self] in await liveLane(epoch: epoch, query: query, behind: behind) } : nil
        defer {
            state.withLock { $0.wakeLive = nil; $0.connected = false }
            falling.finish()
            lane?.cancel()
        }
        falling.yield()
        // After each reconnect, a reconciliation round first (before any tick is sent: a hole it finds can
        // be mended only while no newer sample is stored): a range that differs is sent again from its start.
        let start = try await (held > 0 ? reconcile(epoch: epoch, heldThrough: held, reconnected: true) : nil) ?? held + 1
        state.withLock { $0.acked = start - 1; $0.next = start }
        try hold(after: start - 1)
        logger.info("pushing \(host) to \(remote.host):\(remote.port) from tick \(start)")
        // The session is one zstd stream: each tick costs what differs from the ticks before it.
        let stream = try await remote.stream(post: "/api/v1/sync/push?\(query)", contentType: "application/octet-stream", headers: [("Content-Encoding", "zstd")])
        nonisolated(unsafe) let compressor = SyncStreamCompressor() // used by the sending task only
        defer { Task { await stream.close() } }
        state.withLock { $0.connected = true }
        try await withThrowingTaskGroup(of: Void.self) { group in
            if let book = configuration.addresses {
                group.addTask { await learnAddresses(from: remote, into: book) }
            }
            group.addTask { [self] in
                for try await line in stream.lines {
                    guard let ack = try? JSONDecoder().decode(SyncAck.self, from: Data(line.utf8)) else { continue }
                    switch ack.outcome {
                    case "applied", "duplicate":
                        // Never beyond what was sent: an acknowledgement of more would let retention drop it.
                        if let last = ack.last { state.withLock { $0.acked = max($0.acked, min(last, $0.next &- 1)) } }
                    case "behind":
                        let until = ContinuousClock.now + .milliseconds(ack.boundedWaitMs + 2_000)
                        state.withLock { $0.hubBehindUntil = max($0.hubBehindUntil, until) }
                        falling.yield()
                    case "gap", "need_base":
                        throw Resume(from: ack.resumeAt ?? 1, reason: ack.outcome)
                    case "elsewhere":
                        // Another hub took the host (this one was down, or lost its lock): ask again later.
                        try await Task.sleep(for: .milliseconds(ack.boundedWaitMs))
                        throw Resume(from: state.withLock { $0.acked } + 1, reason: ack.message ?? "another hub writes the host")
                    default:
                        throw TwinError.unavailable("the hub refused a batch: \(ack.message ?? ack.outcome)")
                    }
                }
                throw TwinError.unavailable("the hub ended the push")
            }
            group.addTask { [self] in
                var lastRound = ContinuousClock.now
                while true {
                    try await Task.sleep(for: .seconds(5))
                    let held = state.withLock { $0.acked }
                    do { try hold(after: held) } catch { logger.warning("could not record what \(destination) has not acknowledged: \(error)") }
                    guard ContinuousClock.now - lastRound >= configuration.reconcileEvery else { continue }
                    lastRound = .now
                    if held > 0, let from = try await reconcile(epoch: epoch, heldThrough: held, reconnected: false) {
                        throw Resume(from: from, reason: "reconciliation sends a range again")
                    }
                }
            }
            group.addTask { [self] in
                var base: (seq: UInt64, encoder: TickRecordEncoder, refs: Set<Int64>)?
                var next = start
                var catchUpSent: (at: ContinuousClock.Instant, ticks: Int)?
                var catalog: [Int64: SeriesInfo] = [:] // agent series ids → keys, for dictionaries of live batches
                while !Task.isCancelled {
                    let batch: SyncBatch, encoded: (bytes: [UInt8], state: TickRecordEncoder)
                    let latest = state.withLock { $0.latest }
                    if let b = base, let live = latest, live.seq == next, b.seq == next - 1 {
                        batch = try liveBatch(live, epoch: epoch, after: b.refs, catalog: &catalog)
                        encoded = try SyncCodec.encode(batch, base: b.encoder)
                    } else if let live = latest, next <= live.seq {
                        if let rate = configuration.catchUpRate, let sent = catchUpSent {
                            // The catch-up lane's rate limit: the last batch's ticks at `rate` a second.
                            let due = sent.at + .milliseconds(sent.ticks * 1000 / max(rate, 1))
                            if due > .now { try await Task.sleep(until: due) }
                        }
                        // Only ticks committed whole: the store shows a tick (its log record) before its
                        // versions are committed; the newest tick handed over is committed whole.
                        guard let b = try StoreBatches(store: store, host: host).batch(from: next, maxTicks: min(configuration.catchUpTicks, configuration.catchUpRate ?? .max, Int(live.seq - next + 1))) else {
                            await nextTick(limit: .seconds(1))
                            continue
                        }
                        batch = b
                        encoded = try SyncCodec.encode(b)
                        catchUpSent = (.now, b.ticks.count)
                    } else {
                        await nextTick(limit: .seconds(1))
                        continue
                    }
                    var frame = withUnsafeBytes(of: UInt32(encoded.bytes.count).bigEndian) { Array($0) }
                    frame += encoded.bytes
                    if FaultPoints.fires(.agentMidFrame) {
                        try await stream.send(try compressor.compress(Array(frame.prefix(frame.count / 2))))
                        FaultPoints.crash(.agentMidFrame)
                    }
                    try await stream.send(try compressor.compress(frame))
                    let last = batch.ticks[batch.ticks.count - 1]
                    base = (last.seq, encoded.state, Set(last.refs))
                    next = last.seq + 1
                    state.withLock { [next] in $0.next = next }
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// How a push to a hub that shares its database with the host's writer waits.
    enum HubStandby {
        /// Between asking a standby hub whether it writes the host now.
        static let wait: Duration = .seconds(5)
    }

    /// This destination's name among the store's sync holds.
    public var destination: String { "\(configuration.remote.host):\(configuration.remote.port)" }

    /// Keeps the ticks after `acked` from retention (what the hub has not acknowledged is never dropped).
    private func hold(after acked: UInt64) throws {
        // Caught up (the usual case): nothing to read; the newest tick bounds what is held.
        let latest = state.withLock { $0.latest }
        let from: Int64
        if let latest, acked >= latest.seq { from = latest.time + 1 } else if let latest, acked + 1 == latest.seq { from = latest.time } else {
            from = try store.ticks(from: acked + 1, limit: 1).first?.time ?? TwinTime.nowMillis()
        }
        if heldFrom != from {
            try store.holdForSync(destination, from: from)
            heldFrom = from
        }
    }

    /// A reconciliation round against the hub (off the cooperative pool: it blocks on the network and the
    /// store); the tick to push from when the hub took its cursor back.
    private func reconcile(epoch: UInt64, heldThrough: UInt64, reconnected: Bool) async throws -> UInt64? {
        let (store, host, remote, logger) = (store, configuration.host, configuration.remote, logger)
        let before = reconciler.withLock { $0 }
        let outcome = try await Task.detached {
            var r = before
            let o = try r.round(store: store, host: host, remote: remote, epoch: epoch, heldThrough: heldThrough, reconnected: reconnected, logger: logger)
            return (o, r)
        }.value
        reconciler.withLock { $0 = outcome.1 }
        return outcome.0.resumeFrom
    }

    /// How many ticks the in-order lane must be behind for the live lane to send the newest.
    static let liveLead: UInt64 = 3

    /// The live lane (docs/format/sync.md "Two lanes"): while the in-order lane is `liveLead` ticks or more
    /// behind, or the hub says its copy is (`behind`: a catch-up batch waits there), each newest tick's
    /// samples go at once, standing alone, on a session of their own, so the hub answers for the present
    /// while the past drains. Nothing there is acknowledged or relied on: the in-order lane still sends
    /// every tick. A failure is logged and ends only this lane, for this session.
    private func liveLane(epoch: UInt64, query: String, behind: AsyncStream<Void>) async {
        var catalog: [Int64: SeriesInfo] = [:]
        var stream: RemoteStream?
        let compressor = SyncStreamCompressor()
        var sent: UInt64 = 0
        defer { if let stream { Task { await stream.close() } } }
        do {
            for await _ in behind {
                while !Task.isCancelled {
                    let (latest, behind) = state.withLock { ($0.latest, $0.behind) }
                    guard let latest, behind else { break }
                    if latest.seq > sent {
                        if stream == nil {
                            stream = try await configuration.remote.stream(post: "/api/v1/sync/push?\(query)&lane=live", contentType: "application/octet-stream",
                                                                          headers: [("Content-Encoding", "zstd")])
                            logger.info("\(configuration.host) is catching up at \(destination): its newest ticks also go on the live lane")
                        }
                        let batch = try liveBatch(latest, epoch: epoch, after: nil, catalog: &catalog, samplesOnly: true)
                        let bytes = try SyncCodec.encode(batch).bytes
                        var frame = withUnsafeBytes(of: UInt32(bytes.count).bigEndian) { Array($0) }
                        frame += bytes
                        try await stream!.send(try compressor.compress(frame))
                        sent = latest.seq
                    }
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
        } catch {
            if !Task.isCancelled { logger.warning("the live lane to \(destination) stopped for this session: \(error)") }
        }
    }

    /// A one-tick batch from the tick just committed, chained on the previous tick (standing alone when
    /// `baseRefs` is nil); `samplesOnly` leaves its state changes out (the live lane).
    private func liveBatch(_ tick: CommittedTick, epoch: UInt64, after baseRefs: Set<Int64>?, catalog: inout [Int64: SeriesInfo],
                           samplesOnly: Bool = false) throws -> SyncBatch {
        let fresh = Set(tick.ids).subtracting(baseRefs ?? [])
        if fresh.contains(where: { catalog[$0] == nil }) {
            for s in try store.seriesCatalog() where catalog[s.id] == nil { catalog[s.id] = s }
        }
        var dictionary: [SeriesDefinition] = []
        for id in fresh.sorted() {
            guard let s = catalog[id] else { throw TwinError.unavailable("series \(id) of tick \(tick.seq) is not in the store's index") }
            dictionary.append(SeriesDefinition(ref: id, key: s.key, type: s.type))
        }
        let change = TickChange(seq: tick.seq, time: tick.time, refs: tick.ids, values: tick.values, opened: samplesOnly ? [] : tick.opened,
                                closed: samplesOnly ? [] : tick.closed.map { EntityRef(kind: $0.kind, key: $0.key) })
        return SyncBatch(host: configuration.host, epoch: epoch, baseSeq: baseRefs == nil ? nil : tick.seq - 1, dictionary: dictionary, ticks: [change])
    }
}
