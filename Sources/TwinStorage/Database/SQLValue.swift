/// A value bound to, or read from, a statement of a store's database, whichever engine holds it (SQLite
/// embedded, PostgreSQL for hubs): the five kinds both share.
public enum SQLValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    public var int64: Int64? {
        switch self {
        case .integer(let v): return v
        case .real(let v): return Int64(exactly: v)
        default: return nil
        }
    }

    public var double: Double? {
        switch self {
        case .real(let v): return v
        case .integer(let v): return Double(v)
        default: return nil
        }
    }

    public var string: String? {
        if case .text(let v) = self { return v }
        return nil
    }

    public var bytes: [UInt8]? {
        if case .blob(let v) = self { return v }
        return nil
    }

    public var isNull: Bool { self == .null }
}

/// Something that binds as an ``SQLValue``.
public protocol SQLValueConvertible {
    var sqlValue: SQLValue { get }
}

extension Int64: SQLValueConvertible { public var sqlValue: SQLValue { .integer(self) } }
extension Int: SQLValueConvertible { public var sqlValue: SQLValue { .integer(Int64(self)) } }
extension Double: SQLValueConvertible { public var sqlValue: SQLValue { .real(self) } }
extension String: SQLValueConvertible { public var sqlValue: SQLValue { .text(self) } }
extension Bool: SQLValueConvertible { public var sqlValue: SQLValue { .integer(self ? 1 : 0) } }
extension Array: SQLValueConvertible where Element == UInt8 { public var sqlValue: SQLValue { .blob(self) } }
extension SQLValue: SQLValueConvertible { public var sqlValue: SQLValue { self } }
extension Optional: SQLValueConvertible where Wrapped: SQLValueConvertible {
    public var sqlValue: SQLValue { map(\.sqlValue) ?? .null }
}

/// One row of a result: its columns by position.
public struct SQLRow: Sendable, Equatable {
    public var values: [SQLValue]

    public init(_ values: [SQLValue]) { self.values = values }

    public subscript(_ column: Int) -> SQLValue { values[column] }
}

/// SQL text written for both engines: `?` placeholders, ANSI quoting, `ON CONFLICT` upserts,
/// `RETURNING`. ``numberedPlaceholders(_:)`` gives PostgreSQL's `$1, $2, ...` form.
public enum SQLText {
    /// The larger of its arguments: SQLite's many-argument `max`, PostgreSQL's `GREATEST`.
    public static func greatest(_ dialect: SQLDialect) -> String { dialect == .sqlite ? "max" : "GREATEST" }

    /// `sql` with each `?` outside string literals, quoted identifiers and comments numbered `$1`, `$2`, ...
    public static func numberedPlaceholders(_ sql: String) -> String {
        var out = ""
        out.reserveCapacity(sql.utf8.count + 8)
        var n = 0
        var quote: Character?
        var lineComment = false
        var previous: Character = " "
        for c in sql {
            if lineComment {
                if c == "\n" { lineComment = false }
            } else if let q = quote {
                if c == q { quote = nil }
            } else if c == "'" || c == "\"" {
                quote = c
            } else if c == "-" && previous == "-" {
                lineComment = true
            } else if c == "?" {
                n += 1
                out += "$\(n)"
                previous = c
                continue
            }
            out.append(c)
            previous = c
        }
        return out
    }
}

extension SQLRow {
    /// Column `i` as an integer; throws for NULL or text (a row that is not what the schema says).
    public func integer(_ i: Int) throws -> Int64 {
        guard let v = values[i].int64 else { throw SQLRowError(column: i, expected: "an integer", found: values[i]) }
        return v
    }

    public func real(_ i: Int) throws -> Double {
        guard let v = values[i].double else { throw SQLRowError(column: i, expected: "a number", found: values[i]) }
        return v
    }

    public func text(_ i: Int) throws -> String {
        guard let v = values[i].string else { throw SQLRowError(column: i, expected: "text", found: values[i]) }
        return v
    }

    public func blob(_ i: Int) throws -> [UInt8] {
        guard let v = values[i].bytes else { throw SQLRowError(column: i, expected: "a blob", found: values[i]) }
        return v
    }

    /// An integer column read as a flag (0 is false).
    public func bool(_ i: Int) throws -> Bool { try integer(i) != 0 }
}

/// A column that does not hold what the schema says.
public struct SQLRowError: Error, CustomStringConvertible {
    public var column: Int
    public var expected: String
    public var found: SQLValue
    public var description: String { "column \(column) holds \(found), not \(expected)" }
}
