import Foundation
import Logging
import Metrics
import ServiceLifecycle
import TwinCore
import TwinServer
import TwinStorage
import TwinSync

/// A read-only replica's pull from a hub (`serve --follow URL`, the cloud observer): tells the hub what
/// it holds per host, then applies the hub's outbox as it streams — every host's batches with their
/// origin positions, so the replica's cursor is its own and a batch read twice changes nothing.
public final class FollowService: Service, @unchecked Sendable { // `position` only in the session task
    let receiver: HubReceiver
    let remote: RemoteTwin
    let logger: Logger
    /// The last outbox id of the hub applied (where the next session asks to start; rows held already
    /// are skipped by the hub anyway).
    private var position: Int64 = 0

    public init(receiver: HubReceiver, remote: RemoteTwin, logger: Logger) {
        self.receiver = receiver
        self.remote = remote
        self.logger = logger
    }

    /// The longest wait between attempts to reach the followed hub (as a relay's).
    static let maxBackoff = RelayUplink.maxBackoff

    public func run() async throws {
        await runSessions("follow of \(remote.host):\(remote.port)", backoff: .milliseconds(500), maxBackoff: Self.maxBackoff, logger: logger) { [self] in
            try await session()
        }
    }

    private func session() async throws {
        var form = "after=\(position)"
        for c in try receiver.cursors() where c.appliedThrough > 0 {
            form += "&held=" + (c.host.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? c.host) + "%3A\(c.epoch)%3A\(c.appliedThrough)"
        }
        let stream = try await remote.stream(post: "/api/v1/sync/follow", contentType: "application/x-www-form-urlencoded", headers: [("Accept-Encoding", "zstd")])
        defer { Task { await stream.close() } }
        try await stream.send(Array(form.utf8))
        try await stream.finish()
        logger.info("following \(remote.host):\(remote.port) from outbox row \(position)")
        let decompressor = SyncStreamDecompressor()
        var frames = FollowFrameReader()
        for try await chunk in stream.chunks {
            for (id, batch) in try frames.add(try decompressor.decompress(chunk)) {
                let ack = await receiver.apply(batch, host: nil, datacenter: nil)
                switch ack.outcome {
                case "applied", "duplicate": position = id
                default:
                    // A batch the replica cannot apply (a gap: the hub pruned what it had not read yet).
                    Counter(label: "hosttwin_follow_refusals_total", dimensions: [("outcome", ack.outcome)]).increment()
                    logger.warning("followed batch \(id) of \(ack.host ?? "?"): \(ack.outcome)\(ack.message.map { ": \($0)" } ?? "")\(ack.resumeAt.map { " (resume at \($0))" } ?? "")")
                    position = id
                }
            }
        }
        throw TwinError.unavailable("the hub ended the follow stream")
    }
}
