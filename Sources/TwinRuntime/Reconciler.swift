import Foundation
import Logging
import Metrics
import TwinCore
import TwinServer
import TwinStorage

/// An agent's side of reconciliation (docs/format/sync.md): compares digests of ranges of its ticks, and of
/// its entity state, with what a hub holds; asks the hub to take its cursor back before a range that differs,
/// so the push sends it again. Every mismatch is logged and counted (`hosttwin_sync_reconcile_*`).
struct Reconciler {
    /// Ticks per range compared (10 minutes at 1 s).
    var rangeTicks: UInt64 = 600
    /// Ranges compared per round at most, oldest first (the rest wait for the next round).
    var rangesPerRound = 12
    /// How far back the first round of a process looks, in ticks (later rounds go on from there).
    var firstLookback: UInt64 = 3600

    /// Ticks up to here compared equal (or given up on).
    private(set) var verifiedThrough: UInt64?
    /// Ranges sent again once already, by first tick: a second difference is not sent a third time.
    private var resent: Set<UInt64> = []

    /// What a round found.
    struct Outcome {
        var compared = 0
        var mismatches = 0
        /// The hub's cursor was taken back: the push resumes from here.
        var resumeFrom: UInt64?
    }

    /// One round: ranges of ticks after the last compared one up to `heldThrough` (what the hub holds of
    /// `epoch`, as it said), and the state at `heldThrough`'s tick. After a reconnect (`reconnected`), the
    /// last `firstLookback` ticks are compared again: a hub that restarted may have lost what it had not
    /// made durable.
    mutating func round(store: TwinStore, host: String, remote: RemoteTwin, epoch: UInt64, heldThrough: UInt64, reconnected: Bool, logger: Logger) throws -> Outcome {
        var outcome = Outcome()
        let lookback = heldThrough > firstLookback ? heldThrough - firstLookback : 0
        let start = (reconnected ? min(verifiedThrough ?? lookback, lookback) : verifiedThrough ?? lookback) + 1
        guard heldThrough >= start else { return outcome }
        let last = min(heldThrough, start - 1 + rangeTicks * UInt64(rangesPerRound))
        let positions = try store.ticks(from: start, limit: Int(last - start + 1))
        guard let first = positions.first, first.seq == start, let end = positions.last else { return outcome }
        var ranges: [(range: SyncRange, times: Set<Int64>)] = []
        var i = 0
        while i < positions.count {
            let j = min(i + Int(rangeTicks), positions.count) - 1
            ranges.append((SyncRange(first: positions[i].seq, last: positions[j].seq, from: positions[i].time, to: positions[j].time),
                           Set(positions[i...j].lazy.map(\.time))))
            i = j + 1
        }
        var form = [("host", host), ("epoch", String(epoch, radix: 16)), ("state_at", String(end.time))]
        form += ranges.map { ("range", $0.range.form) }
        let reply = try remote.post("/api/v1/sync/reconcile", form: form)
        guard reply.status == 200, let theirs = try? JSONDecoder().decode(SyncReconciliation.self, from: Data(reply.body)),
              theirs.ranges.count == ranges.count else {
            throw TwinError.unavailable("reconciliation refused (HTTP \(reply.status)): \(reply.text.prefix(300))")
        }
        let reader = try TwinDigest.Reader(store: store, host: nil)
        outcome.compared = ranges.count
        func mismatch(_ part: String) {
            outcome.mismatches += 1
            Counter(label: "hosttwin_sync_reconcile_mismatches_total", dimensions: [("host", host), ("part", part)]).increment()
        }
        let thinned = try store.rawGaps(from: first.time, to: end.time)
        for ((range, times), hub) in zip(ranges, theirs.ranges) {
            // Raw samples thinned here (disk cap) may still be at the hub: such a range is not compared.
            if thinned.contains(where: { $0.to >= range.from && $0.from <= range.to }) { verifiedThrough = range.last; continue }
            let mine = try reader.digest(from: range.from, until: range.to, times: times)
            guard mine != hub else { verifiedThrough = range.last; continue }
            let versionsDiffer = mine.versionDigest != hub.versionDigest
            mismatch(versionsDiffer ? "versions" : "samples")
            let what = "ticks \(range.first)–\(range.last) of \(host) differ at \(remote.host):\(remote.port): here \(mine.samples) samples, \(mine.versions) versions (\(mine.digest)), there \(hub.samples) samples, \(hub.versions) versions (\(hub.digest))"
            if versionsDiffer || resent.contains(range.first) {
                // Sent again already, or state history the hub holds differently: sending again cannot mend it.
                logger.error("reconciliation: \(what); \(versionsDiffer ? "the versions differ" : "still after they were sent again"): left as they are")
                Counter(label: "hosttwin_sync_reconcile_unrepaired_total", dimensions: [("host", host)]).increment()
                verifiedThrough = range.last
                continue
            }
            logger.warning("reconciliation: \(what); sending them again")
            resent.insert(range.first)
            let rewound = try remote.post("/api/v1/sync/rewind", form: [("host", host), ("epoch", String(epoch, radix: 16)), ("to", String(range.first - 1))])
            guard rewound.status == 200, let cursor = try? JSONDecoder().decode(SyncCursor.self, from: Data(rewound.body)) else {
                throw TwinError.unavailable("rewind refused (HTTP \(rewound.status)): \(rewound.text.prefix(300))")
            }
            outcome.resumeFrom = cursor.appliedThrough + 1
            return outcome
        }
        if let state = theirs.state, verifiedThrough == end.seq {
            let mine = try reader.state(at: end.time)
            if mine != state {
                mismatch("state")
                logger.error("reconciliation: the state of \(host) at tick \(end.seq) differs at \(remote.host):\(remote.port): here \(mine.versions) versions (\(mine.digest)), there \(state.versions) (\(state.digest))")
            }
        }
        if outcome.mismatches == 0 { logger.debug("reconciliation: ticks \(start)–\(end.seq) of \(host) equal at \(remote.host):\(remote.port)") }
        return outcome
    }
}
