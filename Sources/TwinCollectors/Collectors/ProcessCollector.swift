import Glibc
import TwinCore

/// Every process, kernel threads included and flagged, as `processes` entities keyed by pid and start time.
///
/// Slow facts are attributes (pid, ppid, name, user, lifecycle state, start time, redacted command); fast
/// numbers are series (`hosttwin_process_cpu_seconds_total`, `..._resident_memory_bytes`, `..._threads`,
/// `..._read_bytes_total`, `..._written_bytes_total`, labelled `pid` and `name`, for user-space processes
/// that have run for `CollectorConfig.processSeriesMinAge`, 10 s by default).
/// The R/S/D flicker of a busy process is not versioned: the `state` attribute is the lifecycle state
/// (alive, zombie, stopped, traced, dead), and the per-tick letters are counted in `node_processes_state`.
///
/// Costs per tick: the `/proc` listing (whose inode numbers tell a reused pid), then per user-space
/// process one `fstatat(2)` (owner), one `stat` read and its `io`. Kernel threads whose `/proc/PID` inode is
/// unchanged are re-read every `kernelThreadRefresh` only (their state letters in `node_processes_state`
/// lag by as much); the command line is read only when a process first appears or its name changes (exec).
/// While the kernel's process events are at hand and none were lost, `/proc` is listed every
/// `listingRefresh` only: the events name the processes that started or exited in between.
///
/// Idle processes form a class of their own: where the kernel's process events are at hand (root, the
/// host's own /proc), a user-space process that was sleeping and had used no CPU tick since its read before
/// is re-read every `idleProcessRefresh` only — its series get a sample then — unless the kernel reports
/// it (exec, uid or name change, exit) or its parent's exit (it is re-parented), or it has just become old
/// enough for series (its first sample comes at once). A process that uses CPU is
/// read at every tick again. On a host of 2,000 idle processes this cuts the collector's CPU about six times
/// (docs/OBSERVATION.md). When the CPU budget relaxes the other collectors (``CollectContext/relaxation``),
/// the idle processes, the kernel threads and the listing wait as many times their refresh, up to a minute;
/// busy processes and the kernel's events keep their pace. A tick hands the `processes` list over only when
/// a process came, went or changed (or ``CollectContext/restate`` asks); the kernel's events hand it over at once.
public final class ProcessCollector: Collector {
    public let name = "processes"

    /// What is cached about a live process between ticks, updated in place; its attributes are rebuilt
    /// when any of its slow facts change. A class: the table is walked at every tick, and a struct of a
    /// dozen references was copied and destroyed at each look (a fifth of the collector's samples).
    final class Known {
        let startTicks: Double
        let key: String
        var comm: String
        var command: String
        var labels: Labels
        var ppid = -1
        var lifecycle = ""
        var uid: UInt32?
        /// The systemd service it runs in (nil outside one).
        var unit: String? = nil
        var attributes: [String: AttributeValue] = [:]
        var inode: UInt64 = 0
        var isKernelThread = false
        var state: Character = "?"
        var threads = 0
        var statRead: Int64 = 0
        /// utime + stime at the last read, and whether that read found it sleeping with the same total as
        /// the read before (an idle process, re-read every `idleProcessRefresh`).
        var cpuTicks: Double = -1
        var idle = false
        /// How the previous run of the same command under the same parent ended, when it ended within a
        /// minute before this one was first seen ("exit 1", "signal 9").
        var afterExit: String? = nil
        /// The tick that last listed it (ms): a process the tick did not list is gone.
        var listedAt: Int64 = .min
        /// When it is old enough for series (ms) while it has had none: an idle process is read then, not
        /// at its next refresh (up to a minute later under the budget). Infinity once it has series.
        var seriesDueAt = Double.infinity

        init(pidName: String, startTicks: Double, comm: String, command: String) {
            (self.startTicks, self.comm, self.command) = (startTicks, comm, command)
            key = "\(pidName)@\(Int64(saturating: startTicks))"
            labels = Labels(["pid": pidName, "name": comm])
        }

        /// Takes the program an exec brought: what was read of the process before (its CPU, idleness)
        /// holds, its attributes are rebuilt.
        func exec(_ pidName: String, comm: String, command: String) {
            (self.comm, self.command, attributes) = (comm, command, [:])
            labels = Labels(["pid": pidName, "name": comm])
        }
    }

    /// How long an unchanged kernel thread goes without its `stat` being re-read (ms).
    public var kernelThreadRefresh: Int64 = 10_000
    /// How long an idle user-space process goes without being re-read (ms), when kernel events are at hand.
    public var idleProcessRefresh: Int64 = 10_000
    /// How long the ticks go without listing `/proc` while the kernel's events are trusted (ms): the
    /// listing (a `getdents` that instantiates an inode per pid) is the collector's largest cost on a quiet
    /// host, and the events already name every process that started or exited.
    public var listingRefresh: Int64 = 10_000
    private var lastListing: Int64 = .min
    /// Full listings of `/proc` so far (for tests).
    private(set) var listings = 0
    private var procDir: Int32 = -1
    private var procDirPath = ""

    deinit { if procDir >= 0 { close(procDir) } }

    /// Keyed by the pid's directory name.
    private var known: [String: Known] = [:]
    private var users = UserNames()
    private let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
    private let clockTicks = Double(sysconf(Int32(_SC_CLK_TCK)))
    private var redactor = Redactor()
    private var bootTime: Double?
    private var redactorConfigured = false
    /// Process events from the kernel (root only); opened at the first tick on the host's own /proc.
    private var eventWatcher: ProcessEventWatcher?
    private var eventWatcherTried = false
    /// Events were lost during a between-ticks refresh: the next tick reads every process afresh.
    private var pendingLoss = false
    /// Children of processes that exited during a between-ticks refresh (re-parented): the next tick reads them.
    private var pendingReread = Set<Int32>()
    /// The last exit of each command under each parent (by ``exitKey(_:_:)``), kept for a minute.
    private var lastExits: [Int: (status: String, t: Int64)] = [:]

    /// A command under a parent, hashed: a build's compiler command lines are tens of kilobytes each, and
    /// a key holding them would keep thousands for a minute.
    private static func exitKey(_ command: String, _ ppid: Int) -> Int {
        var h = Hasher()
        h.combine(command)
        h.combine(ppid)
        return h.finalize()
    }
    /// pid_max and threads-max, re-read every minute (sysctl reads cost tens of µs).
    private var limits: (pids: Double?, threads: Double?, read: Int64)?

    public init() {}

    /// Takes the events the kernel reported since the last call: each exited process seen before gives
    /// its command and parent's last exit status (a restarted program's `after_exit`). Only on the host's
    /// own /proc (a fixture tree's pids are not the kernel's).
    private func drainEvents(_ proc: String, now: Int64) -> ProcessEvents {
        if !eventWatcherTried {
            eventWatcherTried = true
            if proc == "/proc" { eventWatcher = ProcessEventWatcher.open() }
        }
        guard let watcher = eventWatcher else { return ProcessEvents() }
        var events = watcher.drain()
        events.lost = events.lost || pendingLoss
        pendingLoss = false
        for exit in events.exits {
            guard let k = known[String(exit.pid)], !k.isKernelThread else { continue }
            lastExits[Self.exitKey(k.command, k.ppid)] = (exit.description, now)
        }
        if !lastExits.isEmpty { lastExits = lastExits.filter { now - $0.value.t < 60_000 } }
        return events
    }

    /// The known processes whose parent is among `exits`: the kernel re-parents them without an event.
    private func children(of exits: [ProcessExit]) -> [Int32] {
        guard !exits.isEmpty else { return [] }
        let exited = Set(exits.map { Int($0.pid) })
        return known.compactMap { exited.contains($0.value.ppid) ? Int32($0.key) : nil }
    }

    /// The lifecycle class of a `/proc/PID/stat` state letter.
    static func lifecycle(_ s: Character) -> String {
        switch s {
        case "Z": return "zombie"
        case "T": return "stopped"
        case "t": return "traced"
        case "X", "x": return "dead"
        default: return "alive"
        }
    }

    /// Reads process `pidName` afresh (its `stat`, owner, and on first sight, a new name or an `exec`
    /// reported by the kernel its command line): the cached facts, updated with this moment's (the known
    /// process itself, or a new one), the `stat` read, and whether its attributes were rebuilt; nil when
    /// it is gone.
    private func observe(_ pidName: String, pid: Int, now: Int64, exec: Bool = false, _ ctx: CollectContext) -> (Known, PidStat, rebuilt: Bool)? {
        guard let st = ctx.reader.withBytes(at: procDir, pidName + "/stat", { parsePidStat($0) }), let stat = st,
              let dirStat = ctx.reader.status(at: procDir, pidName) else { return nil }
        let uid: UInt32? = dirStat.st_uid
        let lifecycle = Self.lifecycle(stat.state)
        let info: Known
        // A kworker's name carries the workqueue it serves right now ("kworker/0:2-events"), which
        // changes every few seconds: identity is the part before it, so its state does not churn.
        let comm = stat.isKernelThread ? stableKernelThreadName(stat.comm) : stat.comm
        // A process (not a kernel thread) whose command line was empty is read again: polled in the middle
        // of an exec, it had its new name and no command line yet.
        if !exec, let k = known[pidName], k.startTicks == stat.startTicks, k.comm == comm, stat.isKernelThread || k.command.first != "[" {
            info = k
        } else {
            // New process, or an exec: read the command line once.
            let args = ctx.reader.withBytes(at: procDir, pidName + "/cmdline") { parseCmdline(String(decoding: $0, as: UTF8.self)) } ?? []
            let command = args.isEmpty ? "[\(comm)]" : storedCommand(redactor.redact(arguments: args).joined(separator: " "))
            if let same = known[pidName], same.startTicks == stat.startTicks {
                same.exec(pidName, comm: comm, command: command)
                info = same
            } else {
                info = Known(pidName: pidName, startTicks: stat.startTicks, comm: comm, command: command)
                info.unit = ctx.reader.withBytes(at: procDir, pidName + "/cgroup") { parseSystemdUnit(String(decoding: $0, as: UTF8.self)) } ?? nil
                info.afterExit = lastExits[Self.exitKey(command, stat.ppid)]?.status
            }
        }
        let rebuilt = info.ppid != stat.ppid || info.lifecycle != lifecycle || info.uid != uid || info.attributes.isEmpty
        if rebuilt {
            let startSeconds = (bootTime ?? 0) + stat.startTicks / clockTicks
            var attrs: [String: AttributeValue] = [
                "pid": .int(Int64(pid)), "ppid": .int(Int64(stat.ppid)), "name": .string(comm),
                "state": .string(lifecycle), "command": .string(info.command),
                "start_time": .string(TwinTime.rfc3339(Int64(saturating: startSeconds * 1000))),
                "kernel_thread": .bool(stat.isKernelThread),
            ]
            if let unit = info.unit { attrs["unit"] = .string(unit) }
            if let afterExit = info.afterExit { attrs["after_exit"] = .string(afterExit) }
            if let uid {
                attrs["uid"] = .int(Int64(uid))
                attrs["user"] = .string(users.name(uid))
            }
            info.ppid = stat.ppid
            info.lifecycle = lifecycle
            info.uid = uid
            info.attributes = attrs
        }
        info.isKernelThread = stat.isKernelThread
        let cpu = stat.utimeTicks + stat.stimeTicks
        info.idle = info.cpuTicks == cpu && (stat.state == "S" || stat.state == "I")
        info.cpuTicks = cpu
        info.state = stat.state
        info.threads = stat.threads
        info.statRead = now
        info.inode = UInt64(dirStat.st_ino)
        return (info, stat, rebuilt)
    }

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        if !redactorConfigured {
            redactor.words = Redactor.defaultWords.union(ctx.config.extraSecretWords.map { $0.lowercased() })
            redactorConfigured = true
        }
        if bootTime == nil, let text = ctx.reader.read(ctx.paths.proc("stat")) { bootTime = parseProcStat(text).bootTime }
        users.refreshIfNeeded(ctx.paths, ctx.reader)
        // Processes are updated in place: copying each one's facts into a new table every tick (and
        // destroying the old) was 16 % of this collector's samples in a quiet run's profile.
        var listed = 0
        // The list is handed over only when a process came, went or changed its attributes since the
        // last: a steady host's hundred processes are otherwise compared with the stored state at every
        // tick, and the state rules filter them again.
        var changed = false
        var stateCounts: [Character: Int] = [:]
        var threadsTotal = 0
        if procDirPath != ctx.paths.proc {
            if procDir >= 0 { close(procDir) }
            procDir = ctx.reader.openDirectory(ctx.paths.proc)
            procDirPath = ctx.paths.proc
        }
        let now = ctx.observation.timestamp
        // The full listing below covers every change; the events say which idle processes to read afresh.
        let events = drainEvents(ctx.paths.proc, now: now)
        let trustIdle = eventWatcher != nil && !events.lost
        var reported = events.changed.union(pendingReread)
        pendingReread.removeAll()
        for e in events.exits { reported.insert(e.pid) }
        reported.formUnion(children(of: events.exits))
        // While the events are trusted they name every new and exited process, so between full listings
        // the processes are the known ones and those reported (a reused pid comes as an exit and a fork).
        let names: [(name: String, inode: UInt64)]
        // Under the CPU budget's relaxation the steady classes wait longer: idle processes, kernel threads
        // and the listing (the events still name every start, exit and exec at once).
        let idleEvery = Sampler.relaxed(idleProcessRefresh, by: ctx.relaxation)
        let kernelThreadEvery = Sampler.relaxed(kernelThreadRefresh, by: ctx.relaxation)
        if trustIdle, !known.isEmpty, now >= lastListing, now &- lastListing < Sampler.relaxed(listingRefresh, by: ctx.relaxation) {
            names = known.map { ($0.key, $0.value.inode) } + reported.compactMap { known[String($0)] == nil ? (String($0), 0) : nil }
        } else {
            guard let listed = ctx.reader.listWithInodes(ctx.paths.proc) else { return .noData("cannot list \(ctx.paths.proc)") }
            names = listed
            lastListing = now
            listings += 1
        }
        for (pidName, inode) in names {
            guard let first = pidName.utf8.first, first >= 48, first <= 57, let pid = Int(pidName) else { continue }
            let before = known[pidName]
            if let k = before, k.inode == inode, now >= k.statRead,
               k.isKernelThread ? now - k.statRead < kernelThreadEvery
                   : trustIdle && k.idle && now - k.statRead < idleEvery && !reported.contains(Int32(pid)) && Double(now) < k.seriesDueAt {
                k.listedAt = now
                listed += 1
                stateCounts[k.state, default: 0] += 1
                threadsTotal += k.threads
                continue
            }
            let listedBefore = before?.listedAt == now
            // A process may vanish between listing and reading: that is no data for it, not an error.
            guard let (info, stat, rebuilt) = observe(pidName, pid: pid, now: now, exec: events.execs.contains(Int32(pid)), ctx) else { continue }
            stateCounts[stat.state, default: 0] += 1
            threadsTotal += stat.threads
            info.listedAt = now
            let startMillis = ((bootTime ?? 0) + stat.startTicks / clockTicks) * 1000
            let seriesDue = !stat.isKernelThread && Double(now) - startMillis >= Double(ctx.config.processSeriesMinAge)
            info.seriesDueAt = seriesDue || stat.isKernelThread ? .infinity : startMillis + Double(ctx.config.processSeriesMinAge)
            if before !== info {
                known[pidName] = info
                changed = true
            }
            if !listedBefore { listed += 1 }
            if rebuilt { changed = true }
            guard seriesDue else { continue }
            let l = info.labels
            ctx.observation.counter("hosttwin_process_cpu_seconds_total", l, (stat.utimeTicks + stat.stimeTicks) / clockTicks)
            ctx.observation.add("hosttwin_process_resident_memory_bytes", l, stat.rssPages * pageSize)
            ctx.observation.add("hosttwin_process_threads", l, Double(stat.threads))
            if let io = ctx.reader.withBytes(at: procDir, pidName + "/io", { parsePidIO($0) }) ?? nil {
                ctx.observation.counter("hosttwin_process_read_bytes_total", l, io.readBytes)
                ctx.observation.counter("hosttwin_process_written_bytes_total", l, io.writeBytes)
            }
        }
        if listed < known.count {
            known = known.filter { $0.value.listedAt == now }
            changed = true
        }
        ctx.observation.add("node_processes_pids", .empty, Double(known.count))
        ctx.observation.add("node_processes_threads", .empty, Double(threadsTotal))
        for (s, n) in stateCounts.sorted(by: { $0.key < $1.key }) {
            ctx.observation.add("node_processes_state", Labels(["state": String(s)]), Double(n))
        }
        if limits.map({ now - $0.read >= 60_000 || now < $0.read }) ?? true {
            func sysctl(_ name: String) -> Double? { ctx.reader.read(ctx.paths.proc(name)).flatMap { Double($0.trimmingSuffixNewlines) } }
            limits = (sysctl("sys/kernel/pid_max"), sysctl("sys/kernel/threads-max"), now)
        }
        if let v = limits?.pids { ctx.observation.add("node_processes_max_processes", .empty, v) }
        if let v = limits?.threads { ctx.observation.add("node_processes_max_threads", .empty, v) }
        if changed || ctx.restate { ctx.observation.set(.processes, entities) }
        return .ok
    }
}

/// uid → user name from the root's `/etc/passwd` (or gid → group name from `/etc/group`, the same
/// format), re-read when the file's modification time changes.
struct UserNames {
    let file: String
    private var names: [UInt32: String] = [:]
    private var mtime: Int = -1
    private var lastCheck: Int64 = 0

    init(file: String = "/etc/passwd") { self.file = file }

    mutating func refreshIfNeeded(_ paths: HostPaths, _ reader: FileReader) {
        let now = TwinTime.nowMillis()
        guard now - lastCheck > 10_000 else { return }
        lastCheck = now
        let path = paths.root(file)
        let m = reader.status(path).map { Int($0.st_mtim.tv_sec) } ?? 0
        guard m != mtime else { return }
        mtime = m
        names = reader.read(path).map(parsePasswd) ?? [:]
    }

    func name(_ uid: UInt32) -> String { names[uid] ?? String(uid) }
}

extension ProcessCollector: ChangeDrivenCollector {
    /// The known processes as entities.
    private var entities: [Entity] { known.values.map { Entity(kind: .processes, key: $0.key, attributes: $0.attributes) } }

    public var changeDescriptor: Int32? { eventWatcher?.descriptor }

    /// Re-reads only the processes the kernel reported: a fork's child and an exec'ing, renamed or
    /// re-owned process are read afresh; an exited one is dropped at once (it stays a zombie until its
    /// parent waits, which sends no event: the next tick reads it again and shows a zombie). No samples.
    public func refreshChanged(_ ctx: inout CollectContext) -> Bool {
        guard procDir >= 0, !known.isEmpty else { return false } // the first full listing comes first
        let now = ctx.observation.timestamp
        let events = drainEvents(ctx.paths.proc, now: now)
        if events.lost { pendingLoss = true }
        pendingReread.formUnion(children(of: events.exits))
        var changed = false
        var exited = Set<Int32>()
        for e in events.exits {
            exited.insert(e.pid)
            if known.removeValue(forKey: String(e.pid)) != nil { changed = true }
        }
        // The tick reads them again: a zombie (exited, not yet waited for) is shown as one.
        pendingReread.formUnion(exited)
        for pid in events.changed.subtracting(exited) {
            let name = String(pid)
            if let (info, _, rebuilt) = observe(name, pid: Int(pid), now: now, exec: events.execs.contains(pid), ctx) {
                if rebuilt || known[name] !== info { changed = true }
                known[name] = info
            } else if known.removeValue(forKey: name) != nil {
                changed = true
            }
        }
        guard changed else { return false }
        ctx.observation.set(.processes, entities)
        return true
    }
}
