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
    /// The epoch of each host's batches sent in the current session (acknowledgements name none).
    private let sentEpochs = Mutex<[String: UInt64]>([:])

    /// Rewrites each batch's state changes before it leaves (the destination's data policy); nil: as applied.
    let rewrite: (@Sendable (_ opened: inout [Entity], _ closed: inout [EntityRef]) -> Void)?

    /// This hub's datacenter, named to the upstream, which records it for the hosts relayed.
    let datacenter: String?

    public init(store: TwinStore, remote: RemoteTwin, logger: Logger, datacenter: String? = nil,
                rewrite: (@Sendable (_ opened: inout [Entity], _ closed: inout [EntityRef]) -> Void)? = nil) {
        self.store = store
        self.datacenter = datacenter
        self.remote = remote
        self.logger = logger
        self.rewrite = rewrite
    }

    /// What the upstream holds per host, as last heard; nil before the first handshake.
    public var held: [String: (epoch: UInt64, through: UInt64)]? { upstream.withLock { $0 } }

    public func run() async throws {
        await runSessions("relay to \(remote.host):\(remote.port)", backoff: .milliseconds(500), maxBackoff: .seconds(30), logger: logger) { [self] in
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
        upstream.withLock { [held] in $0 = held }
        let start = held
        sentEpochs.withLock { $0 = [:] }
        let store = store
        logger.info("relaying to \(remote.host):\(remote.port): the upstream holds \(cursors.count) host(s)")
        let named = datacenter.map { "?datacenter=" + ($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0) } ?? ""
        let stream = try await remote.stream(post: "/api/v1/sync/push" + named, contentType: "application/octet-stream", headers: [("Content-Encoding", "zstd")])
        nonisolated(unsafe) let compressor = SyncStreamCompressor() // used by the sending task only
        defer { Task { await stream.close() } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                var gaps = Set<String>()
                for try await line in stream.lines {
                    guard let ack = try? JSONDecoder().decode(SyncAck.self, from: Data(line.utf8)), let host = ack.host else { continue }
                    switch ack.outcome {
                    case "applied", "duplicate":
                        guard let last = ack.last, let epoch = sentEpochs.withLock({ $0[host] }) else { continue }
                        upstream.withLock { u in
                            if let h = u?[host], h.epoch == epoch, h.through >= last { return }
                            u?[host] = (epoch, last)
                        }
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
                    guard !items.isEmpty else {
                        try await Task.sleep(for: .milliseconds(50))
                        continue
                    }
                    var frames: [UInt8] = []
                    for item in items {
                        let bytes = try rewrite.map { r in try SyncCodec.rewritingState(item.bytes) { r(&$0, &$1) } } ?? item.bytes
                        withUnsafeBytes(of: UInt32(bytes.count).bigEndian) { frames += $0 }
                        frames += bytes
                    }
                    sentEpochs.withLock { e in for item in items { e[item.host] = reader.held[item.host]?.epoch } }
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
}
