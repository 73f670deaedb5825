import Glibc
import TwinCore

/// TCP and UDP sockets (IPv4 and IPv6): listening sockets as `listening_ports` entities at every tick, and
/// established TCP connections and connected UDP sockets as `connections`, each mapped to its owning process through `/proc/PID/fd`.
///
/// Costs decide the method (docs/ARCHITECTURE.md, "Socket collection"): on the live host, TCP listeners
/// come from a netlink dump restricted to LISTEN and UDP sockets from a netlink dump (tens of µs each),
/// every tick; connected UDP sockets come from the same UDP dump. With the tracepoint below, the LISTEN
/// dump runs only at a tick after a listener opened or closed, and at least every `connectionMaxInterval`.
/// Established TCP connections need the kernel's whole connection hash (about 1.2 ms over netlink for
/// both families, 4 ms through `/proc/net/tcp` on a large table), so they are re-read at most every
/// `connectionMinInterval` (times the CPU budget's relaxation, ``CollectContext/relaxation``, up to a minute)
/// and at least every `connectionMaxInterval`: without the tracepoint below, when the sockstat in-use counts
/// change; with it, when more connections were announced than `exactLookupLimit` could look up. Under a
/// fixture root (`--root`), everything comes from the proc files. The `/proc/*/fd` walk runs only when a
/// socket inode without a known owner appears.
///
/// Between ticks (change-driven capture), TCP changes come from the kernel's `sock:inet_sock_set_state`
/// tracepoint where it can be opened (``TCPStateWatcher``: root): a connection entering ESTABLISHED or a
/// listener opening is looked up by its ends in this network namespace (sock_diag's exact request; the
/// tracepoint reports every namespace's sockets, containers' too) and added to the last set if found
/// there; a connection leaving ESTABLISHED is removed, and so is a listener closing unless the look-up
/// still finds one on its key (several sockets may share it). No dump. Where the
/// kernel announces nothing (UDP, or no tracepoint), listeners are polled every `fastInterval` for
/// `fastWindow` after the listener set last changed (the LISTEN-only dump costs tens of µs). A socket
/// first seen between ticks has no owner until the next tick's fd walk. The tick applies the pending changes too,
/// so connections are current at every tick even when the CPU budget holds refreshes back; lost changes (a
/// full ring) make the next tick dump them.
public final class SocketCollector: Collector {
    public let name = "sockets"
    public var connectionMinInterval: Int64 = 10_000
    public var connectionMaxInterval: Int64 = 60_000

    private var lastCounts: [Double] = []
    private var lastConnectionScan: Int64 = .min
    /// Dumps of the established connections so far (for tests).
    private(set) var connectionDumps = 0
    private var owners: [UInt64: (pid: Int, name: String)] = [:]
    /// Inodes a full fd walk did not find an owner for (another namespace, unreadable fds): not worth a
    /// walk at every tick.
    private var ownerless = Set<UInt64>()
    /// The processes listed at the last fd walk: those not among them are looked at first.
    private var walkedPids = Set<Int>()
    /// Fast polling of listeners after a change (ms): every `fastInterval` until `fastWindow` has passed
    /// without one.
    public var fastInterval: Int64 = 100
    public var fastWindow: Int64 = 10_000
    private var lastListeners: [String: Entity] = [:]
    /// Announced listener changes were more than `exactLookupLimit` could look up: the next refresh dumps
    /// listeners.
    private var listenerDumpNeeded = false
    private var fastUntil: Int64 = .min
    private var lastFast: Int64 = 0
    private var tcpWatcherTried = false
    private var tcpWatcher: TCPStateWatcher?
    /// The connections last stored (a dump's, with the changes since applied); nil before the first dump.
    private var connections: [String: Entity]?
    /// The kernel dropped changes: the next tick dumps connections whatever the counts say.
    private var connectionChangesLost = false
    /// The socket inode of each TCP connection last stored, by key (from the dumps and the look-ups), so
    /// their owners stay cached while they live.
    private var tcpInodes: [String: UInt64] = [:]
    /// The connected UDP sockets last stored, by key (among `connections`).
    private var udpConnections: [String: Entity] = [:]
    /// TCP connections the tracepoint announced past `exactLookupLimit`, stored unverified and without a
    /// socket until a look-up or a dump, by key.
    private var unresolved: [String: SocketLine] = [:]
    /// Announced connections found in this namespace whose owner is not known yet: the next tick's fd walk
    /// names it.
    private var awaitingOwner: [SocketLine] = []
    /// Announced connections looked up one by one at each drain and tick (sock_diag's exact request,
    /// microseconds each); past it they are stored unverified and the tick dumps the connection hash, once
    /// `connectionMinInterval` has passed.
    public var exactLookupLimit = 64
    /// The netlink socket of every dump and look-up.
    private let diag = NetlinkSockDiag()
    /// The last dump of TCP listeners, when it was made, and whether the tracepoint announced a listener
    /// opening or closing since (then the next tick dumps them again).
    private var lastTCPListeners: [Table]?
    private var tcpListenersDumped: Int64 = .min
    private var listenersAnnounced = false
    private var sockstatPaths: (proc: String, ipv4: String, ipv6: String)?
    /// The listening sockets of the last tick and their entities; nil once the listeners were changed
    /// (announced by the kernel, or a dump between ticks), so the next tick builds them again.
    private var lastListening: (sockets: [(Table, SocketLine)], ports: [String: Entity])?

    public init() {}

    struct Table { var proto: String; var family: String; var rows: [SocketLine] }

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let now = ctx.observation.timestamp
        let live = ctx.paths.proc == "/proc"
        var listenTables: [Table] = []
        var connTables: [Table]?

        if live, !tcpWatcherTried {
            tcpWatcherTried = true
            tcpWatcher = TCPStateWatcher.open(reader: ctx.reader)
        }
        // With the tracepoint the kernel announces every change, so the socket counts say nothing new (and
        // are not read): a dump is due only for the announced connections too many to look up one by one.
        var counts: [Double] = []
        // The same reads give the UDP counts the UDP dumps are decided by.
        var udpInUse: (ipv4: Double?, ipv6: Double?)?
        if tcpWatcher == nil {
            counts.reserveCapacity(lastCounts.count)
            let files = sockstatFiles(ctx.paths)
            udpInUse = (ctx.reader.withHeldBytes(files.ipv4) { everySockstatInUse($0, into: &counts, reporting: "UDP:") } ?? nil,
                        ctx.reader.withHeldBytes(files.ipv6) { everySockstatInUse($0, into: &counts, reporting: "UDP6:") } ?? nil)
        }
        let announced = applyTCPChanges().connections
        let since = lastConnectionScan == .min ? Int64.max : now &- lastConnectionScan
        let changedSinceDump = tcpWatcher == nil ? counts != lastCounts : !unresolved.isEmpty
        let connectionsDue = lastConnectionScan == .min || since >= connectionMaxInterval || connectionChangesLost
            || (changedSinceDump && since >= Sampler.relaxed(connectionMinInterval, by: ctx.relaxation))

        var tcpFromNetlink = false
        if live, let tcp = tcpListenerTables(at: now) {
            tcpFromNetlink = true
            listenTables += tcp
            if connectionsDue, let established = diag.tcp(states: 1 << 1) {
                connTables = Self.tcpTables(established)
            }
        }
        if !tcpFromNetlink {
            // Fixture roots, or kernels without sock_diag: the proc tables, listeners and connections at once.
            var all: [Table] = []
            for (file, family) in [("net/tcp", "ipv4"), ("net/tcp6", "ipv6")] {
                guard let text = ctx.reader.read(ctx.paths.proc(file)) else { continue }
                all.append(Table(proto: "tcp", family: family, rows: parseSocketTable(text)))
            }
            listenTables += all
            if connectionsDue || !live { connTables = all }
        }
        var anyUDP = false
        if tcpFromNetlink, let udp = udpSockets(ctx.reader, paths: ctx.paths, inUse: udpInUse) {
            anyUDP = true
            listenTables += udp
        } else {
            for (file, family) in [("net/udp", "ipv4"), ("net/udp6", "ipv6")] {
                guard let text = ctx.reader.read(ctx.paths.proc(file)) else { continue }
                anyUDP = true
                listenTables.append(Table(proto: "udp", family: family, rows: parseSocketTable(text)))
            }
        }
        guard tcpFromNetlink || !listenTables.isEmpty || anyUDP else { return .noData("no socket tables (/proc/net/tcp, udp) and no netlink") }

        let listening = Self.listening(listenTables)
        // Connections: established TCP from a dump when one is due, else the announced ones looked up by
        // their ends; connected UDP sockets from every tick's UDP dump.
        let established = connTables.map { tcp in tcp.flatMap { t in t.rows.filter { $0.state == 1 }.map { (t, $0) } } }
        let udpConnected = listenTables.filter { $0.proto == "udp" }.flatMap { t in t.rows.filter { $0.state == 1 }.map { (t, $0) } }
        var lookedUp = false
        if established == nil, live, var conns = connections, !unresolved.isEmpty {
            connections = nil // held once
            let pending = unresolved
            unresolved = [:]
            lookupsLeft = exactLookupLimit
            lookedUp = admit(pending, into: &conns)
            connections = conns
        }
        // Those closed since they were found need no owner (nor a walk for one).
        let found = established == nil ? awaitingOwner.filter { tcpInodes[Self.connectionKey(proto: "tcp", $0)] == $0.inode } : []
        awaitingOwner = []
        // Sockets read at this tick; between dumps the stored connections' inodes are present too, but
        // were looked at when they came, so only a walk needs them.
        let inodes = listening.map(\.1.inode) + udpConnected.map(\.1.inode) + (established?.map(\.1.inode) ?? found.map(\.inode))
        let unknown = Set(inodes.filter { $0 != 0 && owners[$0] == nil && !ownerless.contains($0) })
        if !unknown.isEmpty {
            let present = established == nil ? Set(inodes).union(tcpInodes.values) : Set(inodes)
            owners = scanSocketOwners(ctx, wanted: unknown).filter { present.contains($0.key) }
            ownerless = present.filter { owners[$0] == nil }
        }

        // The same listening sockets as at the last tick, with the same owners and no change announced or
        // applied since: the same entities (their attributes' storage shared, so the state tracker compares
        // them by it).
        let ports: [String: Entity]
        if unknown.isEmpty, let last = lastListening, Self.sameSockets(last.sockets, listening) {
            ports = last.ports
        } else {
            ports = listeningPorts(listening)
            noteListenerDump(ports, at: now, live: live)
            lastListening = (listening, ports)
        }
        ctx.observation.set(.listeningPorts, Array(ports.values))
        ctx.observation.add("hosttwin_listening_sockets", .empty, Double(ports.count))
        var changed = announced || lookedUp
        if let established {
            lastConnectionScan = now
            connectionDumps += 1
            lastCounts = counts
            connectionChangesLost = false
            unresolved = [:]
            tcpInodes = [:]
            var conns: [String: Entity] = [:]
            for (t, r) in established {
                let e = Self.connection(proto: t.proto, family: t.family, r, owner: owners[r.inode])
                conns[e.key] = e
                tcpInodes[e.key] = r.inode
            }
            connections = conns
            changed = true
        }
        if var conns = connections {
            connections = nil // held once, so the changes below do not copy it
            for r in found {
                let e = Self.connection(proto: "tcp", family: Self.familyName(Int(r.family)), r, owner: owners[r.inode])
                // Closed since it was announced: the close removed it.
                guard conns[e.key] != nil, tcpInodes[e.key] == r.inode else { continue }
                if conns[e.key] != e { conns[e.key] = e; changed = true }
            }
            var udp: [String: Entity] = [:]
            for (t, r) in udpConnected {
                let e = Self.connection(proto: t.proto, family: t.family, r, owner: owners[r.inode])
                udp[e.key] = e
            }
            if udp != udpConnections || established != nil {
                for key in udpConnections.keys { conns[key] = nil }
                conns.merge(udp) { $1 }
                udpConnections = udp
                changed = true
            }
            connections = conns
            if changed || ctx.restate {
                ctx.observation.set(.connections, Array(conns.values))
                ctx.observation.add("hosttwin_tcp_established_connections", .empty, Double(conns.count))
            }
        }
        return .ok
    }

    /// Whether two lists of listening sockets are the same sockets (inodes included) in the same order.
    static func sameSockets(_ a: [(Table, SocketLine)], _ b: [(Table, SocketLine)]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.1 == $1.1 && $0.0.proto == $1.0.proto && $0.0.family == $1.0.family }
    }

    /// "ipv6" for AF_INET6, else "ipv4": the `family` attribute of sockets the kernel reported.
    static func familyName(_ family: Int) -> String { family == Int(AF_INET6) ? "ipv6" : "ipv4" }

    /// A connection's key: its protocol and both ends.
    static func connectionKey(proto: String, _ r: SocketLine) -> String {
        "\(proto)/\(r.localAddress):\(r.localPort)/\(r.remoteAddress):\(r.remotePort)"
    }

    /// A connection as an entity, keyed by protocol and both ends.
    static func connection(proto: String, family: String, _ r: SocketLine, owner: (pid: Int, name: String)?) -> Entity {
        Entity(kind: .connections, key: connectionKey(proto: proto, r), attributes: [
            "protocol": .string(proto), "family": .string(family),
            "local_address": .string(r.localAddress), "local_port": .int(Int64(r.localPort)),
            "remote_address": .string(r.remoteAddress), "remote_port": .int(Int64(r.remotePort)),
            "state": .string(proto == "tcp" ? "established" : "connected"),
            "pid": owner.map { .int(Int64($0.pid)) } ?? .null,
            "process": owner.map { .string($0.name) } ?? .null,
        ])
    }

    /// Takes a dump's listeners as the last set. The fast poll starts when the set changed in a way the
    /// kernel does not announce (UDP, or TCP without the watcher).
    private func noteListenerDump(_ ports: [String: Entity], at now: Int64, live: Bool) {
        listenerDumpNeeded = false
        guard ports != lastListeners else { return }
        let unannounced = tcpWatcher == nil || ports.filter { $0.key.hasPrefix("udp/") } != lastListeners.filter { $0.key.hasPrefix("udp/") }
        lastListeners = ports
        if live, unannounced { fastUntil = now + fastWindow }
    }

    /// Applies the TCP changes the kernel reported since the last call to ``connections`` and the
    /// listeners: whether each set changed. The tracepoint reports the sockets of every network namespace
    /// (containers' too), so what it announces is looked up in this one (``socketHere(_:state:)``) before it
    /// is taken as the host's: a connection opening (``admit(_:into:)``), a listener opening (added, without
    /// owner or uid until the next tick), a listener closing (its key removed unless another socket here
    /// still holds it). Past `exactLookupLimit` look-ups in a drain, listener changes wait for a dump.
    private func applyTCPChanges() -> (connections: Bool, listeners: Bool) {
        guard let watcher = tcpWatcher else { return (false, false) }
        let events = watcher.drain()
        if events.lost { connectionChangesLost = true }
        var (connectionsChanged, listeners) = (false, false)
        guard var conns = connections else { return (false, false) } // the first dump is to come
        connections = nil // held once, so the changes below do not copy it
        var opened: [String: SocketLine] = [:]
        lookupsLeft = exactLookupLimit
        for c in events.changes {
            // A listener opens (→ LISTEN) or closes (LISTEN → CLOSE); LISTEN → SYN_RECV is a connection's
            // socket cloned from its listener, which stays. Of the rest, only a connection's entering or
            // leaving ESTABLISHED matters (most of a connection's transitions are neither).
            let listenerChange = c.newState == 10 || (c.oldState == 10 && c.newState == 7)
            guard listenerChange || c.newState == 1 || c.oldState == 1 else { continue }
            let line = SocketLine(localAddress: c.local.address, localPort: c.local.port, remoteAddress: c.remote.address,
                                  remotePort: c.remote.port, state: c.newState, uid: 0, inode: 0, family: UInt8(truncatingIfNeeded: c.family))
            if listenerChange {
                listenersAnnounced = true // the next tick dumps them (owners, uids)
                lastListening = nil
                guard !listenerDumpNeeded else { continue }
                guard lookupsLeft > 0 else { listenerDumpNeeded = true; continue }
                let key = "tcp/\(c.local.address)/\(c.local.port)"
                let here = socketHere(line, state: 10) != nil
                if c.newState == 10 {
                    guard here, lastListeners[key] == nil else { continue }
                    lastListeners[key] = Entity(kind: .listeningPorts, key: key, attributes: [
                        "protocol": "tcp", "family": .string(Self.familyName(c.family)), "address": .string(c.local.address),
                        "port": .int(Int64(c.local.port)), "uid": .null, "pid": .null, "process": .null,
                    ])
                } else {
                    guard !here, lastListeners.removeValue(forKey: key) != nil else { continue }
                }
                listeners = true
                continue
            }
            let key = Self.connectionKey(proto: "tcp", line)
            if c.newState == 1 {
                if conns[key] == nil { opened[key] = line }
            } else {
                opened[key] = nil
                unresolved[key] = nil
                tcpInodes[key] = nil
                if conns.removeValue(forKey: key) != nil { connectionsChanged = true }
            }
        }
        if admit(opened, into: &conns) { connectionsChanged = true }
        connections = conns
        return (connectionsChanged, listeners)
    }

    /// Look-ups left in this drain (``exactLookupLimit`` at each).
    private var lookupsLeft = 0

    /// The socket with `line`'s two ends in this network namespace, if it is in `state` (1 ESTABLISHED, 10
    /// LISTEN). The exact request answers with a listener when no connection has those ends, so the answer's
    /// state and ends are checked.
    private func socketHere(_ line: SocketLine, state: Int) -> SocketLine? {
        lookupsLeft -= 1
        guard let s = diag.find(tcp: line), s.state == state, s.localPort == line.localPort, s.remotePort == line.remotePort,
              s.localAddress == line.localAddress, s.remoteAddress == line.remoteAddress else { return nil }
        return s
    }

    /// Looks announced connections up in this network namespace while look-ups are left in the drain: one
    /// found is the host's and is stored with its socket (its owner, if not known, at the next tick's fd
    /// walk); one not found is another namespace's or closed since, and is not stored (or no longer). Past
    /// the limit they are stored unverified and kept in `unresolved` for the next tick's look-ups or dump.
    /// Whether `conns` changed.
    private func admit(_ announced: [String: SocketLine], into conns: inout [String: Entity]) -> Bool {
        var changed = false
        for (key, line) in announced {
            guard lookupsLeft > 0 else {
                if conns[key] == nil { conns[key] = Self.connection(proto: "tcp", family: Self.familyName(Int(line.family)), line, owner: nil) }
                unresolved[key] = line
                changed = true
                continue
            }
            guard let socket = socketHere(line, state: 1) else {
                if conns.removeValue(forKey: key) != nil { changed = true }
                tcpInodes[key] = nil
                continue
            }
            let owner = owners[socket.inode]
            conns[key] = Self.connection(proto: "tcp", family: Self.familyName(Int(socket.family)), socket, owner: owner)
            tcpInodes[key] = socket.inode
            if owner == nil { awaitingOwner.append(socket) }
            changed = true
        }
        return changed
    }

    /// TCP sockets in LISTEN over netlink, IPv4 and IPv6, dumped afresh; nil where netlink is unavailable.
    private func dumpTCPListeners(at now: Int64) -> [Table]? {
        guard let tables = diag.tcp(states: 1 << 10).map(Self.tcpTables) else { return nil }
        (lastTCPListeners, tcpListenersDumped, listenersAnnounced) = (tables, now, false)
        return tables
    }

    /// The TCP listeners at a tick: with the tracepoint, the last dump's while no listener opened or closed
    /// since (the kernel announces both) and for at most `connectionMaxInterval`; else a dump.
    private func tcpListenerTables(at now: Int64) -> [Table]? {
        if tcpWatcher != nil, !listenersAnnounced, !listenerDumpNeeded, let last = lastTCPListeners,
           now >= tcpListenersDumped, now &- tcpListenersDumped < connectionMaxInterval { return last }
        return dumpTCPListeners(at: now)
    }

    /// `/proc/net/sockstat` and `sockstat6` under `paths`, built once (read at every tick).
    private func sockstatFiles(_ paths: HostPaths) -> (ipv4: String, ipv6: String) {
        if let f = sockstatPaths, f.proc == paths.proc { return (f.ipv4, f.ipv6) }
        let f = (proc: paths.proc, ipv4: paths.proc("net/sockstat"), ipv6: paths.proc("net/sockstat6"))
        sockstatPaths = f
        return (f.ipv4, f.ipv6)
    }

    static func tcpTables(_ dump: (ipv4: [SocketLine], ipv6: [SocketLine])) -> [Table] {
        [Table(proto: "tcp", family: "ipv4", rows: dump.ipv4), Table(proto: "tcp", family: "ipv6", rows: dump.ipv6)]
    }

    /// Unconnected (listening) and connected UDP sockets over netlink; nil where netlink is unavailable.
    /// Each dump walks the kernel's whole UDP hash whatever it holds (16,384 slots on a 24 GB host: 70 µs
    /// a tick for both families), so a family is dumped only while the kernel counts UDP sockets of it in
    /// use (`UDP: inuse` in `/proc/net/sockstat`, `UDP6: inuse` in `sockstat6`, a microsecond each; a
    /// socket is counted from its bind to its close, the span the dump would list it). The counts are read
    /// now, from the bytes (not the tick's shared read: between ticks that would be the last tick's); a
    /// count that cannot be read dumps. `inUse`: the counts the caller has just read from the same files.
    private func udpSockets(_ reader: FileReader, paths: HostPaths, inUse known: (ipv4: Double?, ipv6: Double?)? = nil) -> [Table]? {
        let files = sockstatFiles(paths)
        func dump(_ family: Int32, _ inUse: Double?) -> [SocketLine]? {
            inUse == 0 ? [] : diag.dump(family: UInt8(family), proto: UInt8(IPPROTO_UDP), states: 1 << 7 | 1 << 1)
        }
        let inUse = known ?? (reader.withHeldBytes(files.ipv4) { sockstatInUse($0, line: "UDP:") } ?? nil,
                              reader.withHeldBytes(files.ipv6) { sockstatInUse($0, line: "UDP6:") } ?? nil)
        guard let u4 = dump(AF_INET, inUse.ipv4), let u6 = dump(AF_INET6, inUse.ipv6) else { return nil }
        return [Table(proto: "udp", family: "ipv4", rows: u4), Table(proto: "udp", family: "ipv6", rows: u6)]
    }

    /// The listening sockets of `tables`: TCP in LISTEN, UDP unconnected.
    static func listening(_ tables: [Table]) -> [(Table, SocketLine)] {
        tables.flatMap { t in t.rows.filter { t.proto == "tcp" ? $0.state == 10 : ($0.state == 7 && $0.remotePort == 0) }.map { (t, $0) } }
    }

    /// Listening sockets as entities by key, each with its owner where known.
    private func listeningPorts(_ listening: [(Table, SocketLine)]) -> [String: Entity] {
        var ports: [String: Entity] = [:]
        for (t, r) in listening {
            let owner = owners[r.inode]
            let key = "\(t.proto)/\(r.localAddress)/\(r.localPort)"
            let e = Entity(kind: .listeningPorts, key: key, attributes: [
                "protocol": .string(t.proto), "family": .string(t.family), "address": .string(r.localAddress),
                "port": .int(Int64(r.localPort)), "uid": .int(Int64(r.uid)),
                "pid": owner.map { .int(Int64($0.pid)) } ?? .null,
                "process": owner.map { .string($0.name) } ?? .null,
            ])
            // Two sockets may share a key (SO_REUSEPORT, several workers): keep the lowest pid.
            if let old = ports[key], (old.attributes["pid"]?.intValue ?? .max) <= (owner.map { Int64($0.pid) } ?? .max) { continue }
            ports[key] = e
        }
        return ports
    }

    /// Maps socket inodes to the process holding them by reading `/proc/PID/fd/*` links, until every inode
    /// of `wanted` is found: the processes that held sockets before first (a server's new connections are
    /// its own), then the processes that started since the last walk (a new program's sockets), the others
    /// only if some are still missing. Under connection churn this reads one or two processes' fds a tick
    /// instead of every process's (a full walk was two thirds of the twin's CPU).
    /// The result is the previous map with what was read added.
    private func scanSocketOwners(_ ctx: CollectContext, wanted: Set<UInt64>) -> [UInt64: (pid: Int, name: String)] {
        let all = (ctx.reader.list(ctx.paths.proc) ?? []).compactMap { Int($0) }
        // Owners that exited are forgotten: their sockets (inherited by a child, say) are looked up next tick.
        let alive = Set(all)
        var out = owners.filter { alive.contains($0.value.pid) }
        var missing = wanted
        let previous = Set(out.values.map(\.pid))
        var holders: [Int] = [], started: [Int] = [], rest: [Int] = []
        for pid in all {
            if previous.contains(pid) { holders.append(pid) } else if walkedPids.contains(pid) { rest.append(pid) } else { started.append(pid) }
        }
        walkedPids = alive
        for pid in holders + started + rest {
            if missing.isEmpty { break }
            let pidName = String(pid)
            let fdDir = ctx.paths.proc + "/" + pidName + "/fd"
            guard let fds = ctx.reader.list(fdDir), !fds.isEmpty else { continue }
            var comm: String?
            for fd in fds {
                guard let target = ctx.reader.readLink(fdDir + "/" + fd), target.hasPrefix("socket:["),
                      let inode = UInt64(target.dropFirst(8).dropLast()) else { continue }
                if comm == nil {
                    comm = ctx.reader.read(ctx.paths.proc + "/" + pidName + "/comm").map { String($0.trimmingSuffixNewlines) } ?? "?"
                }
                if out[inode] == nil || pid < out[inode]!.pid || missing.contains(inode) { out[inode] = (pid, comm!) }
                missing.remove(inode)
            }
        }
        return out
    }
}

extension SocketCollector: ChangeDrivenCollector {
    public var changeDescriptor: Int32? { tcpWatcher?.descriptor }

    public var nextRefresh: Int64? {
        // Changes held for a millisecond (``TCPStateWatcher/drain()``) are handed over at the next refresh.
        guard tcpWatcher?.holdsChanges == true else { return nextFastPoll }
        return min(nextFastPoll ?? .max, TwinTime.nowMillis() + 2)
    }

    /// When listeners are next polled; nil while they are steady.
    private var nextFastPoll: Int64? { lastFast < fastUntil ? lastFast &+ fastInterval : nil }

    /// The kernel's TCP changes, applied to the connections; and, when a listener opened or closed or a
    /// fast poll is due, the LISTEN-only TCP dump and the UDP dump, compared with the last set. Owners come
    /// from the cache only (the fd walk waits for the tick).
    public func refreshChanged(_ ctx: inout CollectContext) -> Bool {
        let now = ctx.observation.timestamp
        guard ctx.paths.proc == "/proc" else { return false }
        let changes = applyTCPChanges()
        var refreshed = false
        if changes.connections, let connections {
            ctx.observation.set(.connections, Array(connections.values))
            refreshed = true
        }
        if changes.listeners, !listenerDumpNeeded {
            ctx.observation.set(.listeningPorts, Array(lastListeners.values))
            refreshed = true
        }
        guard listenerDumpNeeded || nextFastPoll.map({ now >= $0 }) == true else { return refreshed }
        lastFast = now
        lastListening = nil
        guard let tcp = dumpTCPListeners(at: now), let udp = udpSockets(ctx.reader, paths: ctx.paths) else { return refreshed }
        let listening = Self.listening(tcp + udp)
        let ports = listeningPorts(listening)
        let changed = ports != lastListeners
        noteListenerDump(ports, at: now, live: true)
        guard changed || changes.listeners else { return refreshed }
        ctx.observation.set(.listeningPorts, Array(ports.values))
        return true
    }
}
