import Foundation
import Synchronization
import TwinCore

/// The latest observations, shared by the collection thread (writer) and the HTTP server (readers)
/// under a lock. It keeps the last two ticks' samples as they are (no per-tick work) and builds
/// summaries on request. Subscribers of the live stream get one JSON message per tick, built once for
/// all of them and only while someone listens.
public final class LiveTwin: Sendable {
    struct State {
        var host: [String: AttributeValue] = [:]
        var health: [CollectorHealth] = []
        var lastTick: Int64?
        var ticks: Int64 = 0
        var current: (Int64, [MetricSample])?
        var prior: (Int64, [MetricSample])?
        /// The store's series id of each sample of `current` and `prior` (-1: a series twice in its tick).
        var currentIDs: [Int64] = []
        var priorIDs: [Int64] = []
        var types: [String: MetricType] = [:]
        var currentTypes: [String: MetricType] = [:]
        /// Latest (tick, value) per series, kept once `/metrics` has been asked for (a scraper then
        /// comes back); before that no per-tick work is spent on it.
        var latest: LatestValues?
        var subscribers: [Int: AsyncStream<String>.Continuation] = [:]
        var nextSubscriber = 0
        var closed = false
    }

    private let state = Mutex(State())
    public let startedAt: Int64

    public init(startedAt: Int64 = TwinTime.nowMillis()) { self.startedAt = startedAt }

    /// Records one committed tick and tells subscribers about it, with the state changes it brought.
    /// `ids` holds the store's series id of each sample (-1 for a series' second sample in the tick).
    public func update(samples: [MetricSample], ids: [Int64], types: [String: MetricType] = [:], host: [String: AttributeValue]?, health: [CollectorHealth],
                       tick: Int64, events: [TwinEvent] = []) {
        let listeners = state.withLock { s in
            s.prior = s.current
            s.priorIDs = s.currentIDs
            s.current = (tick, samples)
            s.currentIDs = ids
            s.currentTypes = types
            if s.latest != nil {
                // Types matter to /metrics only: taken while someone scrapes, for the series new to it.
                var known = s.types
                s.latest!.merge(samples, ids: ids, at: tick) { metric in
                    if known[metric] == nil, let type = types[metric] { known[metric] = type }
                }
                s.types = known
                // Series gone for longer than the lookback (exited processes) leave, every 5 minutes.
                if s.ticks % 300 == 0 { s.latest!.forget(before: tick - LiveTwin.stale) }
            }
            if let host { s.host = host }
            s.health = health
            s.lastTick = tick
            s.ticks += 1
            return Array(s.subscribers.values)
        }
        guard !listeners.isEmpty, let message = message(events: events) else { return }
        for c in listeners { c.yield(message) }
    }

    /// One tick as the live stream sends it: `{"time":...,"summary":{...},"events":[...]}`.
    func message(events: [TwinEvent]) -> String? {
        guard let summary = summary(), let tick = lastTick else { return nil }
        struct Message: Encodable { var time: String; var summary: HostSummary; var events: [TwinEventJSON] }
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "+Inf", negativeInfinity: "-Inf", nan: "NaN")
        guard let data = try? encoder.encode(Message(time: TwinTime.rfc3339(tick), summary: summary, events: events.map(TwinEventJSON.init))) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// A stream of tick messages until `close()` (or the consumer stops); a slow consumer loses the
    /// oldest messages rather than holding memory.
    public func subscribe() -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(8))
        let id: Int? = state.withLock { s in
            if s.closed { return nil }
            let id = s.nextSubscriber
            s.nextSubscriber += 1
            s.subscribers[id] = continuation
            return id
        }
        guard let id else { continuation.finish(); return stream }
        continuation.onTermination = { [weak self] _ in _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) } }
        return stream
    }

    /// Number of live-stream subscribers now.
    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// Ends every subscription (the process is stopping).
    public func close() {
        let listeners = state.withLock { s in
            s.closed = true
            defer { s.subscribers.removeAll() }
            return Array(s.subscribers.values)
        }
        for c in listeners { c.finish() }
    }

    public var host: [String: AttributeValue] { state.withLock { $0.host } }
    public var health: [CollectorHealth] { state.withLock { $0.health } }
    public var lastTick: Int64? { state.withLock { $0.lastTick } }
    public var ticks: Int64 { state.withLock { $0.ticks } }

    /// The summary of the latest tick (rates against the tick before), or nil before the first tick.
    public func summary() -> HostSummary? {
        let (current, prior) = state.withLock { ($0.current, $0.prior) }
        guard let current else { return nil }
        func map(_ x: (Int64, [MetricSample])?) -> [SeriesKey: (Int64, Double)] {
            guard let (t, s) = x else { return [:] }
            var m: [SeriesKey: (Int64, Double)] = [:]
            m.reserveCapacity(s.count)
            for v in s { m[v.key] = (t, v.value) }
            return m
        }
        var latest = map(prior)
        // Series collected less often than every tick keep their last value.
        for (k, v) in map(current) { latest[k] = v }
        return HostSummary(latest: latest, previous: map(prior))
    }

    /// How long a series missing from the ticks stays in `/metrics` (Prometheus' lookback).
    static let stale: Int64 = 5 * 60_000

    /// Whether `/metrics`' latest values are kept yet: until they are, its first read wants a ``Seed``.
    public var keepsLatest: Bool { state.withLock { $0.latest != nil } }

    /// A series' latest stored value (from the store, at `/metrics`' first read), with its type.
    public struct Seed: Sendable {
        public var id: Int64, key: SeriesKey, type: MetricType, time: Int64, value: Double
        public init(id: Int64, key: SeriesKey, type: MetricType, time: Int64, value: Double) {
            (self.id, self.key, self.type, self.time, self.value) = (id, key, type, time, value)
        }
    }

    /// The latest value of every series seen in the last 5 minutes, for `/metrics`. The first call
    /// starts keeping them, from `seed` (the store's latest values: families collected less often than
    /// every tick are in no tick held here) and the last two ticks; later calls ignore `seed`.
    public func latestSamples(seed: [Seed] = []) -> (time: Int64, samples: [MetricSample], types: [String: MetricType])? {
        state.withLock { s in
            guard let current = s.current else { return nil }
            if s.latest == nil {
                var seeded = LatestValues()
                for v in seed {
                    seeded.set(v.key, id: v.id, at: v.time, v.value)
                    if s.types[v.key.metric] == nil { s.types[v.key.metric] = v.type }
                }
                if let prior = s.prior { seeded.merge(prior.1, ids: s.priorIDs, at: prior.0) }
                seeded.merge(current.1, ids: s.currentIDs, at: current.0)
                s.latest = seeded
                for (k, v) in s.currentTypes where s.types[k] == nil { s.types[k] = v }
            }
            return (current.0, s.latest!.samples(since: current.0 - Self.stale), s.types)
        }
    }
}

/// The latest (tick, value) of every series, in slots indexed by the store's series id: a tick's samples
/// are written by position, without hashing their keys (hashing every sample's labels at every tick cost
/// 0.15 ms of CPU a second in a quiet run, 7 % of its budget, once `/metrics` had been read). Ids are dense
/// from 1 in both stores; one beyond `maxSlots` is kept by key instead. The cost is 40 bytes a slot up to the
/// highest id seen, whether its series still lives or not: about 130 KB for the 3,315 series a recorder had
/// made in two hours beside two CI runs.
struct LatestValues {
    private var keys: [SeriesKey?] = []
    private var times: [Int64] = []
    private var values: [Double] = []
    private var beyond: [SeriesKey: (Int64, Double)] = [:]
    static let maxSlots = 1 << 22

    /// Takes a tick's samples; `new` is told the metric of each series not held before.
    mutating func merge(_ samples: [MetricSample], ids: [Int64], at tick: Int64, new: (String) -> Void = { _ in }) {
        // By index, so a sample's key is copied (retained) only for a slot's first value.
        for j in 0..<min(samples.count, ids.count) where ids[j] >= 0 {
            let id = ids[j]
            guard id < Self.maxSlots else {
                if beyond.updateValue((tick, samples[j].value), forKey: samples[j].key) == nil { new(samples[j].key.metric) }
                continue
            }
            let i = Int(id)
            if i >= keys.count { grow(to: i) }
            if keys[i] == nil {
                keys[i] = samples[j].key
                new(samples[j].key.metric)
            }
            times[i] = tick
            values[i] = samples[j].value
        }
    }

    /// Series `id`'s value `v` at `t`, unless it holds a later one.
    mutating func set(_ key: SeriesKey, id: Int64, at t: Int64, _ v: Double) {
        guard id >= 0 else { return }
        guard id < Self.maxSlots else {
            if (beyond[key]?.0 ?? .min) < t { beyond[key] = (t, v) }
            return
        }
        let i = Int(id)
        if i >= keys.count { grow(to: i) }
        guard keys[i] == nil || times[i] < t else { return }
        keys[i] = key
        times[i] = t
        values[i] = v
    }

    /// Slots up to index `i` at least (a quarter more than before, so a tick's new ids grow them once).
    private mutating func grow(to i: Int) {
        let count = max(i + 1, keys.count + keys.count / 4)
        keys += repeatElement(nil, count: count - keys.count)
        times += repeatElement(.min, count: count - times.count)
        values += repeatElement(0, count: count - values.count)
    }

    /// Forgets the series last seen before `t`.
    mutating func forget(before t: Int64) {
        for i in keys.indices where keys[i] != nil && times[i] < t { keys[i] = nil }
        beyond = beyond.filter { $0.value.0 >= t }
    }

    /// The series seen at or after `t`, with their latest values.
    func samples(since t: Int64) -> [MetricSample] {
        var out: [MetricSample] = []
        for i in keys.indices where times[i] >= t { if let key = keys[i] { out.append(MetricSample(key, values[i])) } }
        for (key, v) in beyond where v.0 >= t { out.append(MetricSample(key, v.1)) }
        return out
    }
}
