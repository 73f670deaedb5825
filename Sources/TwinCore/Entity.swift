/// An attribute value of an entity: the JSON scalars HostTwin stores.
public enum AttributeValue: Hashable, Sendable, Codable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case null

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else { self = .string(try c.decode(String.self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .bool(let b): try c.encode(b)
        case .null: try c.encodeNil()
        }
    }

    public var description: String {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        case .bool(let b): return b ? "true" : "false"
        case .null: return "-"
        }
    }

    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d): return Int64(exactly: d.rounded()) 
        case .string(let s): return Int64(s)
        default: return nil
        }
    }
}

extension AttributeValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

/// The kinds of things a host twin tracks. The names are also the SQL view names of the state API.
public enum EntityKind: String, CaseIterable, Sendable, Codable, Comparable {
    case host
    case processes
    case listeningPorts = "listening_ports"
    case connections
    case mounts
    case filesystems
    case interfaces
    case blockDevices = "block_devices"
    case services
    case packages
    case users
    case backups
    /// Watched configuration files and directories, and SUID files (`FileCollector`).
    case files
    /// Local accounts from /etc/passwd (`AccountCollector`); `users` are login sessions.
    case accounts

    public static func < (a: EntityKind, b: EntityKind) -> Bool { a.rawValue < b.rawValue }
}

/// One thing that exists on the host, as observed at one tick: its kind, a stable key and slow-changing
/// attributes. Fast-moving numbers (CPU time, RSS) are series, not attributes.
public struct Entity: Hashable, Sendable, Codable {
    public var kind: EntityKind
    public var key: String
    public var attributes: [String: AttributeValue]

    public init(kind: EntityKind, key: String, attributes: [String: AttributeValue]) {
        self.kind = kind
        self.key = key
        self.attributes = attributes
    }
}

/// An entity's attributes over the half-open interval `[validFrom, validTo)`; `validTo` is nil while current.
/// Times are milliseconds since the Unix epoch.
public struct EntityVersion: Hashable, Sendable, Codable {
    public var kind: EntityKind
    public var key: String
    public var attributes: [String: AttributeValue]
    public var validFrom: Int64
    public var validTo: Int64?

    public init(kind: EntityKind, key: String, attributes: [String: AttributeValue], validFrom: Int64, validTo: Int64?) {
        self.kind = kind
        self.key = key
        self.attributes = attributes
        self.validFrom = validFrom
        self.validTo = validTo
    }

    enum CodingKeys: String, CodingKey {
        case kind, key, attributes
        case validFrom = "valid_from"
        case validTo = "valid_to"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(key, forKey: .key)
        try c.encode(attributes, forKey: .attributes)
        try c.encode(TwinTime.rfc3339(validFrom), forKey: .validFrom)
        if let validTo { try c.encode(TwinTime.rfc3339(validTo), forKey: .validTo) } else { try c.encodeNil(forKey: .validTo) }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(EntityKind.self, forKey: .kind)
        key = try c.decode(String.self, forKey: .key)
        attributes = try c.decode([String: AttributeValue].self, forKey: .attributes)
        validFrom = try TwinTime.parse(try c.decode(String.self, forKey: .validFrom))
        validTo = try c.decodeIfPresent(String.self, forKey: .validTo).map { try TwinTime.parse($0) }
    }
}

/// What happened to the twin: an entity appeared, changed or disappeared, or the agent started, stopped
/// or missed time (a gap).
public struct TwinEvent: Hashable, Sendable, Codable {
    public enum EventType: String, Sendable, Codable {
        case appeared, changed, disappeared, started, stopped, gap
        /// An alert changed state (pending, firing, resolved, cleared); `key` is its label set.
        case alert
    }

    /// One changed attribute: its old and new value (nil where absent).
    public struct Change: Hashable, Sendable, Codable {
        public var attribute: String
        public var old: AttributeValue?
        public var new: AttributeValue?
        public init(attribute: String, old: AttributeValue?, new: AttributeValue?) {
            self.attribute = attribute
            self.old = old
            self.new = new
        }
    }

    public var time: Int64
    public var type: EventType
    public var kind: EntityKind?
    public var key: String?
    public var changes: [Change]
    public var message: String?

    public init(time: Int64, type: EventType, kind: EntityKind? = nil, key: String? = nil, changes: [Change] = [], message: String? = nil) {
        self.time = time
        self.type = type
        self.kind = kind
        self.key = key
        self.changes = changes
        self.message = message
    }

    /// The attribute-level differences from `old` to `new`, sorted by attribute name.
    public static func changes(from old: [String: AttributeValue], to new: [String: AttributeValue]) -> [Change] {
        var out: [Change] = []
        for (k, v) in new where old[k] != v { out.append(Change(attribute: k, old: old[k], new: v)) }
        for (k, v) in old where new[k] == nil { out.append(Change(attribute: k, old: v, new: nil)) }
        return out.sorted { $0.attribute < $1.attribute }
    }
}

/// The JSON form of a ``TwinEvent`` (CLI `events --json`, `/api/v1/twin/events`, the live stream).
public struct TwinEventJSON: Encodable {
    public var time: String, type: String, kind: String?, key: String?, changes: [TwinEvent.Change]?, message: String?
    public init(_ e: TwinEvent) {
        time = TwinTime.rfc3339(e.time); type = e.type.rawValue; kind = e.kind?.rawValue; key = e.key
        changes = e.changes.isEmpty ? nil : e.changes; message = e.message
    }
}
