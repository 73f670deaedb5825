/// One label of a series: a name and a value, as in the Prometheus data model.
public struct Label: Hashable, Sendable, Codable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// A sorted set of labels. Sorting once at construction makes equality, hashing and the canonical
/// text form independent of the order in which a collector added them.
public struct Labels: Hashable, Sendable, Sequence {
    public private(set) var pairs: [Label]

    public init(_ pairs: [Label] = []) {
        self.pairs = pairs.count > 1 ? pairs.sorted { $0.name < $1.name } : pairs
    }

    /// Labels from pairs already sorted by name (no check, no sort): for code that filters a sorted set.
    public init(sorted pairs: [Label]) {
        self.pairs = pairs
    }

    public init(_ dict: KeyValuePairs<String, String>) {
        self.init(dict.map { Label($0.key, $0.value) })
    }

    public init(dictionary: [String: String]) {
        self.init(dictionary.map { Label($0.key, $0.value) })
    }

    public static let empty = Labels()

    /// The labels as a dictionary (JSON shapes such as Alertmanager's).
    public var dictionary: [String: String] { Dictionary(pairs.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a }) }

    /// The address of the pairs' storage: copies of one label set share it, so equal addresses mean equal
    /// labels. Another set may reuse the address once this one is freed, so code that remembers an
    /// address must keep the labels too.
    public var storageAddress: UInt {
        pairs.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
    }

    public subscript(name: String) -> String? {
        pairs.first { $0.name == name }?.value
    }

    public var isEmpty: Bool { pairs.isEmpty }
    public func makeIterator() -> IndexingIterator<[Label]> { pairs.makeIterator() }

    /// The Prometheus text form of the label set, `{a="1",b="2"}`, or the empty string.
    public var text: String {
        if pairs.isEmpty { return "" }
        var out = "{"
        for (i, l) in pairs.enumerated() {
            if i > 0 { out += "," }
            out += l.name
            out += "=\""
            out += Labels.escape(l.value)
            out += "\""
        }
        out += "}"
        return out
    }

    /// Escapes a label value as the Prometheus text exposition format requires.
    public static func escape(_ value: String) -> String {
        if !value.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\n") }) {
            return value
        }
        var out = ""
        for ch in value {
            switch ch {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(ch)
            }
        }
        return out
    }
}

extension Labels: Codable {
    public init(from decoder: any Decoder) throws {
        let dict = try decoder.singleValueContainer().decode([String: String].self)
        self.init(dictionary: dict)
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(Dictionary(uniqueKeysWithValues: pairs.map { ($0.name, $0.value) }))
    }
}
