import Foundation
import Glibc
import Logging
import ServiceLifecycle
import TwinCollectors
import TwinCore
import TwinSecurity
import TwinServer
import TwinStorage

/// The collection loop as a service: every tick, run the due collectors, apply the data policy, commit
/// what they saw to the store as one transaction, then hand the committed tick to the sinks (the live
/// twin, an agent's uplink). `run` and `agent` are service groups around it.
public struct CollectionService: Service {
    /// What to collect, how often, and where it goes.
    public struct Configuration: Sendable {
        public var paths: HostPaths
        public var selection: CollectorSelection
        public var collectors: CollectorConfig
        /// Tick interval in milliseconds.
        public var interval: Int64
        public var storage: StoragePolicy
        /// Hash and drop rules applied to each tick's entities before they are compared or stored.
        public var dataPolicy: DataPolicy
        public var keys: KeyRing
        /// Stop after this many ticks (tests and benchmarks); nil runs until shutdown.
        public var maxTicks: Int?
        /// Change-driven capture between ticks (processes from the kernel's process events): on for `run`.
        /// Off for agents, whose uplinks carry ticks only.
        public var changeDriven = false
        /// How long a change waits for the rest of its burst before it is stored (ms).
        public var changeCoalesce: Int64 = 5
        /// The least time between two change-driven refreshes (ms): at most 50 a second.
        public var changeGap: Int64 = 20
        /// The collection thread's CPU budget, as a share of one core (0.002: 0.2 %). Ticks always run;
        /// change-driven refreshes and fast polls run only while the thread's spending is within it.
        public var cpuBudget = 0.002
        /// An agent's view of the fleet's addresses and its name there: connections' peers are named
        /// (`remote_host`) before the data policy hashes or drops their addresses.
        public var addresses: (book: FleetAddressBook, host: String)?

        public init(paths: HostPaths, selection: CollectorSelection = CollectorSelection(), collectors: CollectorConfig = CollectorConfig(),
                    interval: Int64 = 1000, storage: StoragePolicy = StoragePolicy(), dataPolicy: DataPolicy, keys: KeyRing, maxTicks: Int? = nil,
                    changeDriven: Bool = false) {
            self.changeDriven = changeDriven
            self.paths = paths
            self.selection = selection
            self.collectors = collectors
            self.interval = interval
            self.storage = storage
            self.dataPolicy = dataPolicy
            self.keys = keys
            self.maxTicks = maxTicks
        }
    }

    let store: TwinStore
    let configuration: Configuration
    let sinks: [any TickSink]
    let logger: Logger
    let metrics = CollectionMetrics()

    public init(store: TwinStore, configuration: Configuration, sinks: [any TickSink], logger: Logger) {
        self.store = store
        self.configuration = configuration
        self.sinks = sinks
        self.logger = logger
    }

    /// The loop's collectors and writer. Only the collection thread touches them after `begin`; the
    /// box is `@unchecked Sendable` to hand them to that thread.
    final class Loop: @unchecked Sendable {
        let sampler: Sampler
        let writer: TwinWriter
        var count = 0
        var lastError: String?
        /// When the last change-driven refresh ran (ms since the epoch).
        var lastChange: Int64 = .min
        var budget: CPUBudget
        var relaxation = Relaxation()
        /// The whole process's CPU per second over the last five minutes.
        var processCost = ProcessCost()
        /// State events stored between ticks, handed to the sinks with the next tick.
        var pendingEvents: [TwinEvent] = []
        /// The entity lists stored between ticks, by kind, handed to the sinks with the next tick where it
        /// does not hand the kind over itself (a collector hands over again only what changed since).
        var pendingEntities: [EntityKind: [Entity]] = [:]
        /// The slot of the last tick and when that tick's work ended (ms since the epoch).
        var lastTick: (slot: Int64, ended: Int64, phases: String)?
        /// The last `capture` health line and the state it was made from.
        var captureHealth: (state: (Bool, Bool, Int64), health: CollectorHealth)?
        init(sampler: Sampler, writer: TwinWriter, budget: CPUBudget) {
            self.sampler = sampler
            self.writer = writer
            self.budget = budget
        }
    }

    /// Wakes the collection thread at its next tick, when a change-driven collector has changes, or when
    /// asked to stop: one `poll(2)` on a pipe of its own and the collectors' descriptors.
    final class Waiter: @unchecked Sendable { // `stopped` guarded by `lock`; the pipe is written once
        enum Wake { case stop, deadline, changes }
        private let lock = NSLock()
        private var stopped = false
        private var pipe: [Int32] = [-1, -1]

        init() {
            _ = Glibc.pipe(&pipe)
            for fd in pipe where fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        }
        deinit { for fd in pipe where fd >= 0 { close(fd) } }

        func stop() {
            lock.lock()
            stopped = true
            lock.unlock()
            var byte: UInt8 = 1
            _ = write(pipe[1], &byte, 1)
        }

        private var isStopped: Bool { lock.lock(); defer { lock.unlock() }; return stopped }

        /// Waits until `deadline` (ms since the epoch) or until one of `descriptors` is readable.
        func wait(until deadline: Int64, watching descriptors: [Int32] = []) -> Wake {
            var fds = [pollfd(fd: pipe[0], events: Int16(POLLIN), revents: 0)] + descriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            while true {
                if isStopped { return .stop }
                let now = TwinTime.nowMillis()
                if deadline <= now { return .deadline }
                let left = deadline - now
                let n = poll(&fds, nfds_t(fds.count), Int32(min(left, 60_000)))
                if n < 0, errno != EINTR { usleep(UInt32(min(left, 100)) * 1000) } // cannot happen with valid descriptors; never spin
                if fds[0].revents != 0 { return .stop }
                if n > 0, fds.dropFirst().contains(where: { $0.revents != 0 }) { return .changes }
            }
        }
    }

    public func run() async throws {
        let c = configuration
        let loop = Loop(sampler: Sampler(paths: c.paths, selection: c.selection, config: c.collectors, tick: c.interval),
                        writer: TwinWriter(store: store, policy: c.storage, report: { [logger] in logger.warning("\($0)") },
                                           afterSeal: { [store] in
                                               // Sealing and compaction ran code and heap the per-tick path does not use.
                                               store.releaseMemory()
                                               MemoryFootprint.releaseFreedMemory()
                                               MemoryFootprint.dropFilePages()
                                           }),
                        budget: CPUBudget(share: c.cpuBudget, now: TwinTime.nowMillis()))
        try loop.writer.begin(now: TwinTime.nowMillis(), interval: c.interval)
        logger.info("collectors: \(loop.sampler.collectorNames.joined(separator: " "))")
        // The loop runs on a thread of its own: one timed wait per tick, none of the task and timer
        // machinery of the async runtime on the per-second path (docs/ARCHITECTURE.md).
        let stopper = Waiter()
        try await withGracefulShutdownHandler {
            // A cancelled group (another service failed, such as the server's bind) stops the loop too;
            // otherwise `run` would go on collecting with the group gone and its signal handlers with it.
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
                    let thread = Thread {
                        self.tickLoop(loop, stopper)
                        done.resume()
                    }
                    thread.start()
                }
            } onCancel: {
                stopper.stop()
            }
        } onGracefulShutdown: {
            stopper.stop()
        }
        for s in sinks { s.collectionStopped() }
        let (writer, count) = (loop.writer, loop.count)
        try writer.finish(now: TwinTime.nowMillis())
        logger.info("stopped after \(count) ticks; store sealed")
    }

    /// Waits for the tick at `next`. Between ticks, stores what change-driven collectors report (kernel
    /// events, coalesced for `changeCoalesce`, refreshes at least `changeGap` apart) and what their fast
    /// polls find, while the CPU budget has room. False when a stop was requested.
    private func waitForTick(_ next: Int64, _ loop: Loop, _ waiter: Waiter) -> Bool {
        let c = configuration
        while true {
            let descriptors = c.changeDriven ? loop.sampler.changeDescriptors : []
            let poll = c.changeDriven ? loop.sampler.nextRefresh.map { max($0, loop.lastChange + c.changeGap) } : nil
            let until = min(next, poll ?? next)
            switch waiter.wait(until: until, watching: descriptors) {
            case .stop: return false
            case .deadline where until >= next: return true
            case .deadline: break // a fast poll is due
            case .changes:
                // Let a burst (fork, exec, exit of one command) arrive, and keep refreshes apart.
                let at = max(TwinTime.nowMillis() + c.changeCoalesce, loop.lastChange + c.changeGap)
                guard at < next else { return waiter.wait(until: next) != .stop } // the tick is sooner
                if waiter.wait(until: at) == .stop { return false }
            }
            loop.lastChange = TwinTime.nowMillis()
            // A wait that overran the tick's slot (the thread woke late) leaves the change to the tick: stored
            // at or after the slot, it would make the tick's time not after it, and the tick would be refused.
            if loop.lastChange >= next { return true }
            guard loop.budget.allows(at: loop.lastChange) else {
                // Over budget: the change waits for the tick's full listing.
                metrics.changeSkipped()
                return waiter.wait(until: next) != .stop
            }
            let cpu = threadCPUMicros()
            if var obs = loop.sampler.refreshChanged(now: loop.lastChange) {
                c.dataPolicy.apply(to: &obs.entities, keys: c.keys)
                do {
                    let (events, t) = try loop.writer.commitState(obs)
                    metrics.changeCommitted(lagMillis: TwinTime.nowMillis() - t)
                    // Sinks (the live stream, rules) hear of them with the next tick, at their own times.
                    loop.pendingEvents += events
                    loop.pendingEntities.merge(obs.entities) { $1 }
                } catch {
                    // The next tick records the change instead.
                    loop.sampler.restate()
                    logger.warning("change-driven capture not stored (the next tick records it): \(error)")
                }
            }
            loop.budget.charge(threadCPUMicros() - cpu, at: TwinTime.nowMillis())
        }
    }

    /// Steps ``Relaxation`` and applies it to the sampler, saying in the log what changed.
    private func relax(_ loop: Loop, at t: Int64) {
        guard configuration.changeDriven else { return }
        let budget = configuration.cpuBudget * 1e6
        switch loop.relaxation.step(at: t, refusedRecently: loop.budget.refused(within: 10_000, at: t), refusedLately: loop.budget.refused(within: 300_000, at: t),
                                    processCost: loop.processCost.perSecond, budget: budget) {
        case .factor?:
            loop.sampler.relaxation = loop.relaxation.factor
            let n = loop.sampler.relaxableNames.count, factor = loop.sampler.relaxation
            logger.notice(factor == 1 ? "within the CPU budget again: \(n) collectors back at their interval"
                          : "to stay within the CPU budget, \(n) collectors now run at \(factor) times their interval")
        case .essentialOverBudget?:
            logger.notice("run costs \(String(format: "%.2f", (loop.processCost.perSecond ?? 0) / 1000)) ms of CPU a second (last 5 minutes) with \(loop.sampler.relaxableNames.count) collectors at \(loop.sampler.relaxation) times their interval, above the CPU budget (\(String(format: "%.2f", budget / 1000)) ms a second): the essential collectors and the rest of run alone exceed it")
        case nil:
            break
        }
    }

    /// The `capture` health line, rebuilt only when what it says changes (it is appended at every tick).
    private func captureHealth(_ loop: Loop, at t: Int64) -> CollectorHealth {
        let over = loop.relaxation.essentialOverBudget
        let state = (over, loop.budget.refused(within: 60_000, at: t), loop.sampler.relaxation)
        if let (held, health) = loop.captureHealth, held == state { return health }
        let c = configuration
        var health = loop.budget.health(changeDriven: c.changeDriven, relaxed: loop.sampler.relaxation > 1 ? loop.sampler.relaxableNames : [], factor: loop.sampler.relaxation)
        if over {
            health.message = (health.message ?? "") + "; even so run costs more than the CPU budget: the essential collectors and the rest of run (store, rules, detector, server) alone exceed it"
        }
        loop.captureHealth = (state, health)
        return health
    }

    private func tickLoop(_ loop: Loop, _ stopper: Waiter) {
        nameCurrentThread("hosttwin-collect")
        let c = configuration
        while c.maxTicks.map({ loop.count < $0 }) ?? true {
            // Ticks sit on the interval grid, so timestamps are regular (cheap to compress) and comparable across hosts.
            let next = (TwinTime.nowMillis() / c.interval + 1) * c.interval
            if let last = loop.lastTick, next - last.slot > c.interval {
                // Slots passed over: the loop fell behind (a slow tick, or the thread not scheduled). Said
                // here so that a completeness gap of "not stored" ticks inside a run has its reason.
                let skipped = Int((next - last.slot) / c.interval) - 1
                metrics.ticksSkipped(skipped)
                logger.notice("\(skipped) tick\(skipped == 1 ? "" : "s") skipped: the tick at \(TwinTime.rfc3339(last.slot)) ended \(last.ended - last.slot) ms after its slot (the host was busy\(last.phases.isEmpty ? "" : "; " + last.phases))")
            }
            if !waitForTick(next, loop, stopper) { return }
            let started = DispatchTime.now().uptimeNanoseconds
            let cpu = threadCPUMicros()
            defer {
                loop.budget.charge(threadCPUMicros() - cpu, at: TwinTime.nowMillis())
                loop.processCost.note(cpuMicros: processCPUMicros(), at: next)
            }
            let began = TwinTime.nowMillis()
            var obs = loop.sampler.tick(now: next)
            if obs.health.contains(where: { $0.collector == "self" }) { metrics.store(into: &obs) }
            let collected = TwinTime.nowMillis()
            relax(loop, at: next)
            obs.health.append(captureHealth(loop, at: next))
            if let (book, host) = c.addresses, var connections = obs.entities[.connections] {
                book.annotate(&connections, policy: c.dataPolicy, localHost: host)
                obs.entities[.connections] = connections
            }
            c.dataPolicy.apply(to: &obs.entities, keys: c.keys)
            let result: TwinWriter.TickResult
            defer {
                metrics.tick(durationNanos: Int64(DispatchTime.now().uptimeNanoseconds - started), health: obs.health,
                             sealQueue: loop.writer.sealQueueDepth, stored: loop.lastError == nil, lagMillis: TwinTime.nowMillis() - next)
            }
            let committing = TwinTime.nowMillis()
            do {
                result = try loop.writer.commit(obs, health: obs.health)
                if loop.lastError != nil { logger.notice("collection resumed: tick \(TwinTime.rfc3339(next)) stored") }
                loop.lastError = nil
                for e in result.events where e.kind == .listeningPorts || e.kind == .services {
                    logger.debug("\(e.type.rawValue) \(e.kind!.rawValue) \(e.key ?? "")")
                }
            } catch {
                // A failed commit (disk full, locked database) loses this tick only; the next ticks retry,
                // with the entities in full.
                loop.sampler.restate()
                let msg = "\(error)"
                if msg != loop.lastError { logger.error("collection paused, tick \(TwinTime.rfc3339(next)) not stored (retrying every tick): \(msg)") }
                loop.lastError = msg
                continue
            }
            let committed = TwinTime.nowMillis()
            if !loop.pendingEntities.isEmpty {
                // The rules' snapshot and the live view take the lists stored since the last tick.
                obs.entities.merge(loop.pendingEntities) { tick, _ in tick }
                loop.pendingEntities.removeAll()
            }
            if !sinks.isEmpty {
                let tick = CommittedTick(seq: result.seq, time: next, observation: obs, events: c.dataPolicy.redactedForReaders(loop.pendingEvents + result.events),
                                         health: loop.sampler.sortedHealth,
                                         ids: result.ids, values: result.values, opened: result.opened, closed: result.closed)
                for s in sinks { s.committed(tick) }
            }
            loop.pendingEvents.removeAll(keepingCapacity: true)
            let ended = TwinTime.nowMillis()
            // Where a late tick's time went, for the "skipped" notice (built only then).
            let slowest = loop.sampler.slowest
            loop.lastTick = (next, ended, "")
            if ended - next > c.interval {
                loop.lastTick?.phases = "started \(began - next) ms after its slot, collectors \(collected - began) ms (the slowest, \(slowest.name), \(slowest.micros / 1000) ms), "
                    + "data policy \(committing - collected) ms, store commit \(committed - committing) ms, rules and live view \(ended - committed) ms"
            }
            loop.count += 1
            if loop.count == 3 { MemoryFootprint.dropFilePages() }
        }
    }
}
