import Foundation
import TwinCore

/// Seals frozen head chunks into the store, then compacts, rolls up and applies retention — on a thread
/// of its own, so sealing never blocks collection. It reads and writes through the writer's connection
/// only (no reader connection keeps a page cache alive in `run`), and before each job — or, idle, once it
/// has grown — copies SQLite's WAL into the database through a connection of its own
/// (``TwinStore/checkpointAside(ifWALExceeds:)``), so that no fsync happens in a tick. Jobs that fail (disk full) stay queued and are retried;
/// their log segments stay on disk until they succeed, so nothing acknowledged is lost meanwhile.
final class Sealer: @unchecked Sendable {
    /// The chunks of one head window and the log segments they make redundant.
    struct Job: Sendable {
        var chunks: [FrozenChunk]
        /// Log segments up to and including this one are covered once the job commits.
        var throughSegment: UInt64
        /// The newest sample time the writer has seen (drives compaction and retention).
        var latest: Int64
        var runID: Int64?
        /// The ticks committed in this head window, oldest first, and the sequence number of the first.
        var ticks: [Int64] = []
        var firstSeq: UInt64 = 0
        /// Only pack the versions closed before `latest` (the writer asks every minute, so closed versions
        /// leave the rows soon on a busy host); no chunks, no log segments.
        var packOnly = false
        /// Another hub's head-log rows, sealed by the hub taking its hosts over (nil: the store's own log).
        var hub: String?
        /// The log segment the writer moved past at this cut, flushed and closed here.
        var finishedSegment: FinishedSegment?
    }

    private let store: TwinStore
    /// Where seals are written: the writer's session when hubs share the database (a hub whose session
    /// is gone cannot seal what another hub may already have sealed), else the store's database.
    private let writes: any StoreDatabase
    private let policy: StoragePolicy
    private let report: @Sendable (String) -> Void
    /// Called on the sealer thread after each job (the run loop gives freed heap back here).
    private let afterJob: @Sendable () -> Void
    private let cond = NSCondition()
    private var queue: [Job] = []
    private var stopping = false
    private var thread: Thread?
    private var lastRetention: Int64?
    /// The message of the failure being retried, so it is reported once, not every retry.
    private var failure: String?
    /// Partitions that could not be created, reported once each.
    private var partitionProblems: Set<String> = []

    init(store: TwinStore, writes: (any StoreDatabase)? = nil, policy: StoragePolicy, report: @escaping @Sendable (String) -> Void,
         afterJob: @escaping @Sendable () -> Void = {}) {
        self.store = store
        self.writes = writes ?? store.database
        self.policy = policy
        self.report = report
        self.afterJob = afterJob
    }

    func start() {
        let t = Thread { [self] in loop() }
        thread = t
        t.start()
    }

    /// Head windows waiting to be sealed (including one being sealed).
    var depth: Int {
        cond.lock()
        defer { cond.unlock() }
        return queue.count
    }

    func enqueue(_ job: Job) {
        cond.lock()
        queue.append(job)
        cond.signal()
        cond.unlock()
    }

    /// Waits until every queued job has been tried once more, then stops the thread. Jobs still failing
    /// stay in the log for the next start to recover. Returns how many are left.
    @discardableResult
    func stop() -> Int {
        cond.lock()
        stopping = true
        cond.broadcast()
        while thread != nil { cond.wait() }
        let left = queue.count
        cond.unlock()
        return left
    }

    /// Runs queued jobs on the caller's thread (no sealer thread): for tools that seal once and exit.
    func runNow() throws {
        while let job = cond.withLock({ queue.first }) {
            try process(job)
            cond.withLock { _ = queue.removeFirst() }
        }
    }

    /// How often an idle sealer looks at the WAL, and the size past which it copies it into the database:
    /// well below the writer's own checkpoint at 1,024 pages (4 MiB).
    static let idleCheckpointSeconds = 5.0, idleCheckpointBytes = 512 << 10

    private func loop() {
        nameCurrentThread("hosttwin-sealer")
        cond.lock()
        while true {
            while queue.isEmpty && !stopping {
                // Idle: every few seconds, copy a WAL grown past a limit (the commits between jobs), so that
                // the writer's own checkpoint, in a tick, is never reached; and start it over here.
                if !cond.wait(until: Date().addingTimeInterval(Self.idleCheckpointSeconds)), queue.isEmpty, !stopping {
                    cond.unlock()
                    if store.checkpointAside(ifWALExceeds: Self.idleCheckpointBytes) { store.startWALOver() }
                    cond.lock()
                }
            }
            guard let job = queue.first else { break } // stopping with nothing left
            cond.unlock()
            var ok = true
            do {
                try process(job)
                afterJob()
                if failure != nil { report("storage recovered: sealing resumed"); failure = nil }
            } catch {
                ok = false
                let message = "sealing \(job.chunks.count) chunks failed (kept in the log, retrying): \(error)"
                if failure != message { report(message); failure = message }
            }
            cond.lock()
            if ok { queue.removeFirst() } else if stopping { break } else {
                _ = cond.wait(until: Date().addingTimeInterval(5))
            }
        }
        thread = nil
        cond.broadcast()
        cond.unlock()
    }

    /// Seals the job (throws only if that fails: the job is then retried), then compacts and applies
    /// retention — whose failures are reported and left to the next job, since sealing again would store
    /// the chunks twice.
    private func process(_ job: Job) throws {
        job.finishedSegment?.flushAndClose()
        // Before the job's writes, so that the first of them starts the WAL over: SQLite fsyncs the new
        // WAL header then, and that happens here rather than in a tick's commit.
        store.checkpointAside()
        if job.packOnly {
            try store.packVersions(before: job.latest)
            return
        }
        for problem in try store.preparePartitions(around: job.latest) where !partitionProblems.contains(problem) {
            report(problem)
            partitionProblems.insert(problem)
        }
        try seal(job)
        do {
            let hour = floorDiv(job.latest, StoragePolicy.hour) * StoragePolicy.hour
            try store.compact(before: hour)
            // Closed versions leave the rows a head window after they ended (a busy host closes hundreds a minute).
            try store.packVersions(before: floorDiv(job.latest, policy.headWindow) * policy.headWindow)
            try store.compactVersionBlocks(before: hour)
            if lastRetention.map({ job.latest - $0 >= 10 * StoragePolicy.minute }) ?? true {
                try store.applyRetention(policy, latest: job.latest)
                lastRetention = job.latest
            }
            if let cap = policy.diskCap {
                for gap in try store.thin(to: cap, latest: job.latest) {
                    report("\(gap.reason): \(TwinTime.rfc3339(gap.from)) to \(TwinTime.rfc3339(gap.to)) (a gap recorded in raw_gaps)")
                }
            }
        } catch {
            report("compaction or retention failed (tried again after the next seal): \(error)")
        }
        store.pool.releaseMemory()
    }

    func seal(_ job: Job) throws {
        var groups: [Int64: [(id: Int64, count: Int, blob: [UInt8], minT: Int64, maxT: Int64)]] = [:]
        for c in job.chunks {
            let samples = try c.samples()
            groups[GroupBlock.group(of: c.seriesID), default: []].append(
                (c.seriesID, samples.count, try ChunkCodec.encodeMember(samples), samples[0].0, samples[samples.count - 1].0))
        }
        var place = store.headLog
        if let other = job.hub { place = .table(hub: other) }
        try writes.write { db in
            for (_, chunks) in groups.sorted(by: { $0.key < $1.key }) { try TwinStore.insertChunkRow(db, level: 0, chunks) }
            if case .table(let hub) = place {
                try db.execute("DELETE FROM head_log WHERE hub = ? AND segment <= ?", [hub, Int64(job.throughSegment)])
            }
            try TwinStore.setMeta(db, place.sealedMark, String(job.throughSegment))
            try TickRuns.append(db, ticks: job.ticks, firstSeq: job.firstSeq)
            if let run = job.runID {
                try db.execute("UPDATE runs SET last_tick = \(SQLText.greatest(db.dialect))(coalesce(last_tick, 0), ?) WHERE id = ?", [job.latest, run])
            }
        }
        guard store.headLog == .files else { return }
        for s in LogSegment.list(store.dataDir) where s.seq <= job.throughSegment { unlink(s.path) }
    }
}
