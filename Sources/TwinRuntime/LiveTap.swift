import Synchronization
import TwinCore

/// The newest tick of hosts a hub has seen, as live-lane batches (one tick standing alone, samples only),
/// which its relays send upstream on their own live lane so the upstream answers for the present while
/// in-order batches drain (docs/format/sync.md "Two lanes"): the live batches agents push here (they do
/// while behind), and — only while some relay's outbox is behind (``want(_:)``) — each host's last tick
/// applied in order, so a hub whose upstreams keep up encodes nothing extra.
public final class LiveTap: Sendable {
    private struct State {
        var wanting = 0
        var version: UInt64 = 0
        /// Host → the version it was offered at, when (ms), and its batch.
        var frames: [String: (version: UInt64, at: Int64, bytes: [UInt8])] = [:]
    }
    private let state = Mutex(State())
    /// Batches older than this are dropped at the next offer (a host no longer behind offers none).
    static let keepMillis: Int64 = 30_000

    public init() {}

    /// Whether a relay wants every host's newest tick now.
    public var wanted: Bool { state.withLock { $0.wanting > 0 } }

    /// A relay starts (`true`) or stops wanting every host's newest tick; calls pair up per relay.
    public func want(_ on: Bool) {
        state.withLock { $0.wanting = max(0, $0.wanting + (on ? 1 : -1)) }
    }

    /// Offers `host`'s newest tick; a newer offer replaces it.
    public func offer(host: String, batch: [UInt8]) {
        let now = TwinTime.nowMillis()
        state.withLock { s in
            s.version += 1
            s.frames[host] = (s.version, now, batch)
            if s.frames.count > 64, s.version % 64 == 0 { s.frames = s.frames.filter { now - $0.value.at < Self.keepMillis } }
        }
    }

    /// The batches offered after `version` (oldest offer first), and the version to ask from next.
    public func batches(after version: UInt64) -> (version: UInt64, batches: [[UInt8]]) {
        state.withLock { s in
            (s.version, s.frames.values.filter { $0.version > version }.sorted { $0.version < $1.version }.map(\.bytes))
        }
    }
}
