import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import TwinCore
import TwinServer
import TwinStorage
import TwinSync

/// A hub's push to the hub upstream (`serve --push URL`, docs/format/sync.md "Relay and observer"): asks
/// the upstream for every host's cursor, then streams the outbox — the batches this hub applied, with
/// their origin positions — from there on, each host's first batch standing alone. The outbox keeps
/// every batch until each upstream holds it, so nothing is lost while the upstream is away.
public final class RelayUplink: Service, @unchecked Sendable { // mutable state behind `upstream`
    let store: TwinStore
    let remote: RemoteTwin
    let logger: Logger
    /// What the upstream holds per host, from its handshake and acknowledgements (nil before the first).
    private let upstream = Mutex<[String: (epoch: UInt64, through: UInt64)]?>(nil)
    /// The epoch of each host's batches sent in the current session (acknowledgements name none) and the
    /// newest tick sent: an acknowledgement counts only up to it, whatever the upstream says (the outbox is
    /// pruned by what the upstream holds, so an upstream that lies must not empty it).
    private let sent = Mutex<[String: (epoch: UInt64, through: UInt64)]>([:])

    /// Rewrites each batch's state changes before it leaves (the destination's data policy); nil: as applied.
    let rewrite: StateRewrite?

    /// This hub's datacenter, named to the upstream, which records it for the hosts relayed.
    let datacenter: String?

    /// The hub's address book, taught what the upstream resolves (nil: not asked).
    let addresses: FleetAddressBook?

    /// The hub's newest ticks, sent on the live lane while the outbox is behind (nil: no live lane).
    let tap: LiveTap?
    /// How far behind (ms since this hub applied the batch being sent) the relay must be for the live lane.
    static let liveLagMillis: Int64 = 1_000
    /// The longest wait between attempts to reach the upstream: hub-to-hub links are few, and each second
    /// a restarted upstream waits for its relays is a second its present is stale (an agent waits up to 5 s).
    static let maxBackoff: Duration = .seconds(2)
    /// Whether the outbox being sent is that far behind.
    private let lagging = Atomic<Bool>(false)
    /// Until when (ms) the upstream said it is behind (a catch-up batch waits there for its budget).
    private let upstreamBehindUntil = Atomic<Int64>(0)

    public init(store: TwinStore, remote: RemoteTwin, logger: Logger, datacenter: String? = nil, tap: LiveTap? = nil,
                addresses: FleetAddressBook? = nil, rewrite: StateRewrite? = nil) {
        self.addresses = addresses
        self.store = store
        self.tap = tap
        self.datacenter = datacenter
        self.remote = remote
        self.logger = logger
        self.rewrite = rewrite
    }

    /// What an upstream's handshake says it holds, bounded by what this hub applied: it cannot hold more of a
    /// host's epoch than that, and what it claims beyond is counted only that far, so the outbox is neither
    /// skipped nor pruned past what was sent (SECURITY.md, "a hub that lies"). Also returns the claims cut.
    static func bounded(_ held: [String: (epoch: UInt64, through: UInt64)], by own: [RemoteCursor]) -> ([String: (epoch: UInt64, through: UInt64)], [String]) {
        var out = held, overclaimed: [String] = []
        for mine in own {
            guard let h = held[mine.host], h.epoch == mine.epoch, h.through > mine.appliedThrough else { continue }
            overclaimed.append("\(mine.host) through tick \(h.through), this hub \(mine.appliedThrough)")
            out[mine.host] = (h.epoch, mine.appliedThrough)
        }
        return (out, overclaimed)
    }

    /// What the upstream holds per host, as last heard; nil before the first handshake.
    public var held: [String: (epoch: UInt64, through: UInt64)]? { upstream.withLock { $0 } }

    public func run() async throws {
        await runSessions("relay to \(remote.host):\(remote.port)", backoff: .milliseconds(500), maxBackoff: Self.maxBackoff, logger: logger) { [self] in
            try await session()
        }
    }

    private func session() async throws {
        let remote = remote
        let hello = try await Task.detached { try remote.get("/api/v1/sync/cursors?version=\(SyncCodec.version)") }.value
        guard hello.status == 200, let cursors = try? JSONDecoder().decode([SyncCursor].self, from: Data(hello.body)) else {
            throw TwinError.unavailable("handshake refused (HTTP \(hello.status)): \(hello.text.prefix(300))")
        }
        var held: [String: (epoch: UInt64, through: UInt64)] = [:]
        for c in cursors { held[c.host] = (UInt64(c.epoch, radix: 16) ?? 0, c.appliedThrough) }
        let (bounded, overclaimed) = Self.bounded(held, by: try store.remoteCursors())
        held = bounded
        if let first = overclaimed.first {
            logger.warning("the upstream claims \(overclaimed.count) host(s) beyond what this hub applied (\(first)); counted only that far")
        }
        upstream.withLock { [held] in $0 = held }
        let start = held
        sent.withLock { $0 = [:] }
        let store = store
        logger.info("relaying to \(remote.host):\(remote.port): the upstream holds \(cursors.count) host(s)")
        let named = datacenter.map { "?datacenter=" + ($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0) } ?? ""
        let stream = try await remote.stream(post: "/api/v1/sync/push" + named, contentType: "application/octet-stream", headers: [("Content-Encoding", "zstd")])
        nonisolated(unsafe) let compressor = SyncStreamCompressor() // used by the sending task only
        defer { Task { await stream.close() } }
        lagging.store(false, ordering: .relaxed)
        try await withThrowingTaskGroup(of: Void.self) { group in
            if let addresses {
                group.addTask { await learnAddresses(from: remote, into: addresses) }
            }
            if let tap {
                group.addTask { [self] in await liveLane(tap: tap, path: "/api/v1/sync/push" + named + (named.isEmpty ? "?" : "&") + "lane=live") }
            }
            group.addTask { [self] in
                var gaps = Set<String>()
                for try await line in stream.lines {
                    guard let ack = try? JSONDecoder().decode(SyncAck.self, from: Data(line.utf8)), let host = ack.host else { continue }
                    switch ack.outcome {
                    case "applied", "duplicate":
                        guard let acked = ack.last, let (epoch, through) = sent.withLock({ $0[host] }) else { continue }
                        let last = min(acked, through)
                        upstream.withLock { u in
                            if let h = u?[host], h.epoch == epoch, h.through >= last { return }
                            u?[host] = (epoch, last)
                        }
                    case "behind":
                        upstreamBehindUntil.store(TwinTime.nowMillis() + Int64(ack.boundedWaitMs) + 2_000, ordering: .relaxed)
                    case "gap":
                        // The upstream lacks ticks this hub no longer holds (or never did): said once per host.
                        Counter(label: "hosttwin_relay_gaps_total", dimensions: [("host", host)]).increment()
                        if gaps.insert(host).inserted {
                            logger.warning("the upstream lacks ticks of \(host) from \(ack.resumeAt ?? 0) on, which this hub's outbox does not hold; its later batches wait for them")
                        }
                    case "need_base":
                        throw Resume(from: ack.resumeAt ?? 1, reason: "need_base for \(host)")
                    default:
                        throw TwinError.unavailable("the upstream refused a batch of \(host): \(ack.message ?? ack.outcome)")
                    }
                }
                throw TwinError.unavailable("the upstream ended the relay")
            }
            group.addTask { [self] in
                var reader = try OutboxReader(store: store, held: start)
                while !Task.isCancelled {
                    let items = try reader.next()
                    lagging.store(items.last.map { TwinTime.nowMillis() - $0.appliedAt > Self.liveLagMillis } ?? false, ordering: .relaxed)
                    guard !items.isEmpty else {
                        try await Task.sleep(for: .milliseconds(50))
                        continue
                    }
                    var frames: [UInt8] = []
                    for item in items {
                        let bytes = try rewrite.map { r in try SyncCodec.rewritingState(item.bytes) { r(item.host, &$0, &$1) } } ?? item.bytes
                        withUnsafeBytes(of: UInt32(bytes.count).bigEndian) { frames += $0 }
                        frames += bytes
                    }
                    sent.withLock { e in
                        for item in items {
                            guard let epoch = reader.held[item.host]?.epoch else { continue }
                            let through = e[item.host].map { $0.epoch == epoch ? max($0.through, item.range.upperBound) : item.range.upperBound } ?? item.range.upperBound
                            e[item.host] = (epoch, through)
                        }
                    }
                    if FaultPoints.fires(.relayMidFrame) {
                        try await stream.send(try compressor.compress(Array(frames.prefix(frames.count / 2))))
                        FaultPoints.crash(.relayMidFrame)
                    }
                    try await stream.send(try compressor.compress(frames))
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// The live lane of a relay: every 100 ms, the tap's newest ticks go upstream at once, standing alone —
    /// the live batches of agents behind, and while this relay's outbox is more than ``liveLagMillis``
    /// behind or the upstream says it is (`behind`), every host's last applied tick. The upstream previews them, it does not store them; the
    /// outbox still brings every tick in order. A failure ends only this lane, for this session.
    private func liveLane(tap: LiveTap, path: String) async {
        var stream: RemoteStream?
        let compressor = SyncStreamCompressor()
        var version = tap.batches(after: .max).version // from now on
        var wanting = false
        defer {
            if wanting { tap.want(false) }
            if let stream { Task { await stream.close() } }
        }
        do {
            while !Task.isCancelled {
                let late = lagging.load(ordering: .relaxed) || TwinTime.nowMillis() < upstreamBehindUntil.load(ordering: .relaxed)
                if late != wanting {
                    tap.want(late)
                    wanting = late
                    if late { logger.info("the relay to \(remote.host):\(remote.port) is behind: every host's newest tick also goes on the live lane") }
                }
                let (next, batches) = tap.batches(after: version)
                version = next
                if !batches.isEmpty {
                    if stream == nil {
                        stream = try await remote.stream(post: path, contentType: "application/octet-stream", headers: [("Content-Encoding", "zstd")])
                    }
                    var frames: [UInt8] = []
                    for b in batches {
                        withUnsafeBytes(of: UInt32(b.count).bigEndian) { frames += $0 }
                        frames += b
                    }
                    try await stream!.send(try compressor.compress(frames))
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        } catch {
            if !Task.isCancelled { logger.warning("the live lane to \(remote.host):\(remote.port) stopped for this session: \(error)") }
        }
    }
}
