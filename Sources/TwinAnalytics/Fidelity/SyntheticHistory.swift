import Foundation
import TwinCore

/// An independent, seeded model of a host's history, for checking what a store gives back
/// (`hosttwin bench history`): entities with lifetimes and attribute changes, and sample series whose
/// every value is a pure function of time. It answers "what was true at t" without any store: the
/// entities alive at t with the attributes of their version at t, and each series' value at each tick.
///
/// Everything happens on the tick grid (`start + k * interval`); an entity born at tick t is present
/// from t, one that dies at t is absent from t, and a change at t shows from t.
public struct SyntheticHistory: Sendable {
    /// How busy the modelled host is.
    public struct Profile: Sendable {
        /// Processes alive throughout (daemons), and new short-lived ones per hour (they live from one
        /// tick to `shortLivedMax`).
        public var longLivedProcesses = 120
        public var processesPerHour = 360.0
        public var shortLivedMax: Int64 = 20 * 60_000
        /// Listening ports throughout, and ports opened per hour (each open for 1 min to 6 h).
        public var listeners = 12
        public var listenersPerHour = 2.0
        /// Connections throughout, and new ones per hour (each open for one tick to 10 min).
        public var connections = 20
        public var connectionsPerHour = 60.0
        /// Static mounts, packages, services and interfaces, and changes per entity per day (remounts,
        /// upgrades, state changes, address changes).
        public var mounts = 12
        public var packages = 400
        public var services = 30
        public var interfaces = 3
        public var changesPerDay = 0.05
        /// Counters and gauges sampled at every tick.
        public var counters = 12
        public var gauges = 4

        public init() {}

        /// A quiet server: a few hundred processes a day besides its daemons.
        public static let quiet = Profile()
        /// A busy one: more daemons, a short-lived process every two seconds, connection churn.
        public static var busy: Profile {
            var p = Profile()
            p.longLivedProcesses = 400
            p.processesPerHour = 1_800
            p.listeners = 40
            p.listenersPerHour = 12
            p.connections = 200
            p.connectionsPerHour = 3_600
            p.changesPerDay = 0.2
            return p
        }
    }

    /// One entity's life: present from `birth` until `death` (exclusive; `.max` when alive at the end), a
    /// new version of its attributes at each of `changes`.
    struct Life: Sendable {
        var kind: EntityKind
        var id: Int64
        var birth: Int64
        var death: Int64
        var changes: [Int64]
    }

    /// One sampled series: its key, type, and the parameters of its value function.
    public struct Series: Sendable {
        public var key: SeriesKey
        public var type: MetricType
        let salt: UInt64
        let base: Int64
        /// Counters: cumulative hundredths at the start of each 5-minute window (bursts change the rate
        /// per window), so the value at any second is found without summing from the start.
        let windowStart: [Int64]
    }

    public let start: Int64
    public let end: Int64
    public let interval: Int64
    public let seed: UInt64
    let lives: [Life]
    /// Lives sorted by birth, and the longest life's length, to find those alive at t quickly.
    let longestLife: Int64
    public let series: [Series]

    static let window: Int64 = 300

    /// Builds the history of `[start, end)` at `interval` (ms).
    public init(profile: Profile, start: Int64, end: Int64, interval: Int64, seed: UInt64 = 1) {
        precondition(interval > 0 && end > start)
        self.start = start
        self.end = end
        self.interval = interval
        self.seed = seed
        var rng = SeededRandom(seed: seed)
        var lives: [Life] = []
        var nextID: Int64 = 1000
        let day = Double(86_400_000)
        func onGrid(_ t: Int64) -> Int64 { start + (t - start + interval - 1) / interval * interval }
        func exponential(_ mean: Double) -> Double { -log(1 - Double.random(in: 0..<1, using: &rng)) * mean }
        func changes(from birth: Int64, to death: Int64) -> [Int64] {
            guard profile.changesPerDay > 0 else { return [] }
            var out: [Int64] = [], t = birth
            while true {
                t = onGrid(t + max(interval, Int64(exponential(day / profile.changesPerDay))))
                if t >= min(death, end) { return out }
                out.append(t)
            }
        }
        func add(_ kind: EntityKind, birth: Int64, death: Int64, changing: Bool) {
            nextID += 1
            lives.append(Life(kind: kind, id: nextID, birth: birth, death: death, changes: changing ? changes(from: birth, to: death) : []))
        }
        for (kind, count, changing) in [(EntityKind.processes, profile.longLivedProcesses, true), (.listeningPorts, profile.listeners, false),
                                        (.connections, profile.connections, false), (.mounts, profile.mounts, true),
                                        (.packages, profile.packages, true), (.services, profile.services, true), (.interfaces, profile.interfaces, true)] {
            for _ in 0..<count { add(kind, birth: start, death: .max, changing: changing) }
        }
        for (kind, perHour, shortest, longest) in [(EntityKind.processes, profile.processesPerHour, interval, profile.shortLivedMax),
                                                   (.listeningPorts, profile.listenersPerHour, 60_000, 6 * 3_600_000),
                                                   (.connections, profile.connectionsPerHour, interval, 600_000)] where perHour > 0 {
            var t = start
            while true {
                t = onGrid(t + max(interval, Int64(exponential(3_600_000 / perHour))))
                guard t < end else { break }
                let life = onGrid(Int64.random(in: shortest...max(shortest, longest), using: &rng))
                let death = t + max(interval, life)
                add(kind, birth: t, death: death < end ? death : .max, changing: kind == .processes)
            }
        }
        lives.sort { ($0.birth, $0.id) < ($1.birth, $1.id) }
        self.lives = lives
        longestLife = lives.map { $0.death == .max ? end - $0.birth : $0.death - $0.birth }.max() ?? 0

        var series: [Series] = []
        let windows = Int((end - start) / 1000 / Self.window) + 2
        for i in 0..<profile.counters {
            let salt = SeededRandom.mix(seed &+ UInt64(i) &* 0x1000_0001)
            let base = Int64(7 + salt % 500)
            var starts = [Int64](repeating: 0, count: windows)
            for w in 1..<windows {
                starts[w] = starts[w - 1] + Self.counterRate(salt: salt, base: base, window: Int64(w - 1)) * Self.window
            }
            let labels = Labels(dictionary: i < 8 ? ["cpu": "\(i / 4)", "mode": ["user", "system", "idle", "iowait"][i % 4]] : ["device": "dev\(i)"])
            let metric = i < 8 ? "node_cpu_seconds_total" : (i % 2 == 0 ? "node_network_receive_bytes_total" : "node_disk_read_bytes_total")
            series.append(Series(key: SeriesKey(metric, labels), type: .counter, salt: salt, base: base, windowStart: starts))
        }
        for i in 0..<profile.gauges {
            let salt = SeededRandom.mix(seed &+ UInt64(i + 1000) &* 0x1000_0001)
            series.append(Series(key: SeriesKey(["node_load1", "node_memory_MemAvailable_bytes", "node_procs_running", "node_pressure_cpu_waiting"][i % 4],
                                                 i < 4 ? .empty : Labels(dictionary: ["part": "\(i)"])),
                                 type: .gauge, salt: salt, base: Int64(salt % 10_000), windowStart: []))
        }
        self.series = series
    }

    /// A counter's rate in hundredths per second during 5-minute window `w`: its base, ten times that in
    /// about one window in twelve (a burst).
    static func counterRate(salt: UInt64, base: Int64, window w: Int64) -> Int64 {
        SeededRandom.mix(salt ^ UInt64(bitPattern: w)) % 12 == 0 ? base * 10 : base
    }

    /// The value of `series[i]` at `t` (a tick): counters rise by their window's rate each second plus a
    /// jitter smaller than the rate (so they never fall); gauges jump for a minute in one of twenty and
    /// carry noise, with one decimal.
    public func value(_ i: Int, at t: Int64) -> Double {
        let s = series[i], second = (t - start) / 1000
        let h = SeededRandom.mix(s.salt ^ UInt64(bitPattern: second))
        switch s.type {
        case .counter:
            let w = second / Self.window
            let rate = Self.counterRate(salt: s.salt, base: s.base, window: w)
            let hundredths = s.windowStart[Int(w)] + rate * (second - w * Self.window) + Int64(h % UInt64(s.base))
            return Double(hundredths) / 100
        default:
            let burst: Int64 = SeededRandom.mix(s.salt ^ UInt64(bitPattern: second / 60)) % 20 == 0 ? 50_000 : 0
            return Double(s.base + burst + Int64(h % 1000)) / 10
        }
    }

    /// The tick times of `[from, to]`.
    public func ticks(from: Int64, to: Int64) -> StrideThrough<Int64> {
        let first = start + max(0, (from - start + interval - 1) / interval) * interval
        return stride(from: first, through: min(to, end - interval), by: Int(interval))
    }

    /// The last tick at or before `t` (nil before the start).
    public func tick(atOrBefore t: Int64) -> Int64? {
        t < start ? nil : start + min((t - start) / interval, (end - start - 1) / interval) * interval
    }

    /// The attributes of `life` in its version `v` (0 at birth, one more at each change).
    static func attributes(_ life: Life, version v: Int) -> [String: AttributeValue] {
        let id = life.id
        switch life.kind {
        case .processes:
            return ["pid": .int(id), "name": .string("svc\(id % 37)"), "user": .string(id % 5 == 0 ? "root" : "app"),
                    "state": .string(v % 2 == 0 ? "sleeping" : "running"), "started": .int(life.birth / 1000),
                    "command": .string("svc\(id % 37) --worker \(id) --config /etc/app/\(id % 11).conf --generation \(v)")]
        case .listeningPorts:
            return ["protocol": "tcp", "address": "0.0.0.0", "port": .int(1024 + id % 60_000), "pid": .int(id % 997), "process": .string("svc\(id % 37)")]
        case .connections:
            return ["protocol": "tcp", "local_port": .int(30_000 + id % 30_000), "remote_port": 443, "state": "ESTABLISHED"]
        case .mounts:
            return ["device": .string("/dev/vd\(id % 26)"), "fstype": "ext4", "options": .string(v % 2 == 0 ? "rw,relatime" : "ro,relatime")]
        case .packages:
            return ["version": .string("1.\(v).\(id % 10)"), "architecture": "amd64"]
        case .services:
            return ["active_state": .string(["active", "reloading", "failed"][v % 3]), "sub_state": .string(v % 3 == 2 ? "failed" : "running")]
        default:
            return ["mtu": 1500, "address": .string("10.\(id % 250).\(v % 250).1/24"), "state": "up"]
        }
    }

    /// The key of `life`, as a collector would name it.
    static func key(_ life: Life) -> String {
        switch life.kind {
        case .processes: return "\(life.id)@\(life.birth / 1000)"
        case .listeningPorts: return "tcp:0.0.0.0:\(1024 + life.id % 60_000)#\(life.id)"
        case .connections: return "tcp:10.0.0.2:\(30_000 + life.id % 30_000)->10.0.\(life.id % 250).9:443#\(life.id)"
        case .mounts: return "/mnt/vol\(life.id)"
        case .packages: return "pkg\(life.id)"
        case .services: return "svc\(life.id).service"
        default: return "veth\(life.id)"
        }
    }

    /// Entities present at `t` with their attributes then, by kind and key: the truth a store's
    /// `state(at:)` must give back.
    public func truth(at t: Int64) -> [EntityKind: [String: [String: AttributeValue]]] {
        var out: [EntityKind: [String: [String: AttributeValue]]] = [:]
        // Lives are sorted by birth: only those born in the last `longestLife` can still be alive.
        var lo = 0, hi = lives.count
        while lo < hi { let mid = (lo + hi) / 2; if lives[mid].birth < t - longestLife { lo = mid + 1 } else { hi = mid } }
        for life in lives[lo...] {
            if life.birth > t { break }
            guard t < life.death else { continue }
            let version = life.changes.prefix { $0 <= t }.count
            out[life.kind, default: [:]][Self.key(life)] = Self.attributes(life, version: version)
        }
        return out
    }

    /// What happens at each tick, for feeding a writer: the kinds whose entity set changes at that tick.
    /// Walk with ``Replay``.
    public func replay() -> Replay { Replay(self) }

    /// Walks the history tick by tick, keeping the entities present: ``step(to:)`` applies the births,
    /// deaths and changes of one tick and says which kinds changed.
    public struct Replay {
        let history: SyntheticHistory
        /// (time, life index, version; -1 for the death), in time order.
        private var events: [(t: Int64, life: Int, version: Int)] = []
        private var next = 0
        public private(set) var present: [EntityKind: [String: Entity]] = [:]

        init(_ h: SyntheticHistory) {
            history = h
            for (i, life) in h.lives.enumerated() {
                events.append((life.birth, i, 0))
                for (v, c) in life.changes.enumerated() { events.append((c, i, v + 1)) }
                if life.death != .max { events.append((life.death, i, -1)) }
            }
            events.sort { ($0.t, $0.life, $0.version) < ($1.t, $1.life, $1.version) }
        }

        /// Applies everything up to and including `t`; returns the kinds that changed.
        public mutating func step(to t: Int64) -> Set<EntityKind> {
            var changed = Set<EntityKind>()
            while next < events.count, events[next].t <= t {
                let e = events[next]
                next += 1
                let life = history.lives[e.life]
                let key = SyntheticHistory.key(life)
                changed.insert(life.kind)
                if e.version < 0 {
                    present[life.kind]?[key] = nil
                } else {
                    present[life.kind, default: [:]][key] = Entity(kind: life.kind, key: key, attributes: SyntheticHistory.attributes(life, version: e.version))
                }
            }
            return changed
        }
    }

    /// How many lives, versions (births and changes) and deaths the history holds.
    public var counts: (lives: Int, versions: Int, deaths: Int) {
        (lives.count, lives.reduce(0) { $0 + 1 + $1.changes.count }, lives.filter { $0.death != .max }.count)
    }
}
