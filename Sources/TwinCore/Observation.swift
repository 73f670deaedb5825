/// The Prometheus type of a metric family.
public enum MetricType: String, Sendable, Codable {
    case counter, gauge, untyped

    /// The type of the series named `metric`, given the types of metric families (`# TYPE` lines, remote_write
    /// metadata): its own family's, or for `NAME_total` the type of family `NAME`; the other suffixed series of a
    /// typed family (`_count`, `_sum`, `_bucket`, `_created`) and names of no known family are untyped.
    public static func of(series metric: String, families: [String: MetricType]) -> MetricType {
        if let t = families[metric] { return t }
        for suffix in ["_total", "_count", "_sum", "_bucket", "_created"] where metric.hasSuffix(suffix) {
            if let t = families[String(metric.dropLast(suffix.count))] { return suffix == "_total" ? t : .untyped }
        }
        return .untyped
    }
}

extension Character {
    /// `0` to `9` (`isNumber` alone also takes other scripts' digits and fractions).
    public var isASCIIDigit: Bool { isASCII && isNumber }
}

/// A metric sample as a collector produced it, before it is stored.
public struct MetricSample: Sendable, Hashable {
    public var key: SeriesKey
    public var value: Double
    public init(_ key: SeriesKey, _ value: Double) {
        self.key = key
        self.value = value
    }
}

/// How one collector fared at one tick.
public struct CollectorHealth: Sendable, Codable, Hashable {
    public enum Status: String, Sendable, Codable { case ok, noData = "no_data", error, disabled }
    public var collector: String
    public var status: Status
    public var message: String?
    public var durationMicros: Int64
    public init(collector: String, status: Status, message: String? = nil, durationMicros: Int64 = 0) {
        self.collector = collector
        self.status = status
        self.message = message
        self.durationMicros = durationMicros
    }
    enum CodingKeys: String, CodingKey {
        case collector, status, message
        case durationMicros = "duration_us"
    }
}

/// Everything observed at one tick: metric samples, the entity snapshots of the kinds collected at this
/// tick (a kind absent here was not collected this tick and keeps its previous state), and collector health.
public struct Observation: Sendable {
    public var timestamp: Int64
    public var samples: [MetricSample] = []
    public var types: [String: MetricType] = [:]
    public var entities: [EntityKind: [Entity]] = [:]
    public var health: [CollectorHealth] = []

    /// Samples whose families are in `types` already, and where the samples being added now sit among them
    /// (``typed(after:offset:)``): a sample of the family found at its place was typed before, so ``add``
    /// skips the type map (a hash of the name, about 50 ns, at each of the hundreds of samples of a tick).
    @usableFromInline var typedBefore: [MetricSample] = []
    @usableFromInline var typedOffset = Int.min / 2

    public init(timestamp: Int64) { self.timestamp = timestamp }

    /// Adds a sample; the first sample of a family records its type.
    @inlinable
    public mutating func add(_ metric: String, _ labels: Labels = .empty, _ value: Double, _ type: MetricType = .gauge) {
        let before = samples.count &+ typedOffset
        if before < 0 || before >= typedBefore.count || typedBefore[before].key.metric != metric, types[metric] == nil {
            types[metric] = type
        }
        samples.append(MetricSample(SeriesKey(metric, labels), value))
    }

    /// Tells ``add`` that the samples added from now on are likely those of `samples` from index
    /// `samples.count + offset` on (the same collector's at the previous tick), whose families `types`
    /// holds; a nil `offset` turns this off. Set by the collectors' scheduler, never kept in a stored tick.
    public mutating func typed(after samples: [MetricSample], offset: Int?) {
        (typedBefore, typedOffset) = offset == nil ? ([], Int.min / 2) : (samples, offset!)
    }

    /// Adds a counter sample.
    @inlinable
    public mutating func counter(_ metric: String, _ labels: Labels = .empty, _ value: Double) {
        add(metric, labels, value, .counter)
    }

    /// Replaces the snapshot of one kind of entity.
    public mutating func set(_ kind: EntityKind, _ list: [Entity]) {
        entities[kind] = list
    }
}
