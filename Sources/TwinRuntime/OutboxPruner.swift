import Logging
import ServiceLifecycle
import TwinCore
import TwinStorage

/// Trims a hub's outbox every minute: a batch goes once every upstream (`relays`) holds it and it is
/// older than `keep` (the window followers may read behind). A hub without upstreams keeps `keep`.
public struct OutboxPruner: Service {
    let store: TwinStore
    let relays: [RelayUplink]
    let keep: Int64
    let logger: Logger

    public init(store: TwinStore, relays: [RelayUplink], keepMillis: Int64, logger: Logger) {
        self.store = store
        self.relays = relays
        self.keep = keepMillis
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(60)) }
            if Task.isCancelled || Task.isShuttingDownGracefully { break }
            do { try prune(now: TwinTime.nowMillis()) } catch { logger.warning("outbox pruning failed: \(error)") }
        }
    }

    /// One pass: what every upstream holds, per host (all of it without upstreams), and older than `keep`.
    func prune(now: Int64) throws {
        var held: [String: (epoch: UInt64, through: UInt64)] = [:]
        if relays.isEmpty {
            for c in try store.remoteCursors() { held[c.host] = (c.epoch, .max) }
        } else {
            let views = relays.map(\.held)
            guard views.allSatisfy({ $0 != nil }) else { return } // an upstream not heard from yet holds nothing known
            for (host, first) in views[0]! {
                var h = first
                for v in views.dropFirst() {
                    guard let other = v![host], other.epoch == h.epoch else { h.through = 0; break }
                    h.through = min(h.through, other.through)
                }
                if h.through > 0 { held[host] = h }
            }
        }
        let deleted = try store.pruneOutbox(held: held, keepSince: now - keep)
        if deleted > 0 { logger.debug("outbox: \(deleted) batch(es) every reader holds removed") }
    }
}
