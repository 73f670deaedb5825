/// One `/proc/meminfo` field: node_exporter's name for it (`Active(anon)` → `Active_anon`), its value
/// (bytes when the file gives kB) and whether it is in bytes.
public struct MeminfoField: Sendable, Equatable {
    public var name: String
    public var value: Double
    public var isBytes: Bool
}

/// Parses `/proc/meminfo`. Lines without a number are skipped.
public func parseMeminfo(_ text: String) -> [MeminfoField] {
    var out: [MeminfoField] = []
    out.reserveCapacity(64)
    for line in lines(text) {
        let f = line.fields
        guard f.count >= 2, f[0].count > 1, f[0].hasSuffix(":"), var v = Double(f[1]) else { continue }
        var name = String(f[0].dropLast())
        if let open = name.firstIndex(of: "("), name.hasSuffix(")") {
            name = String(name[..<open]) + "_" + String(name[name.index(after: open)..<name.index(before: name.endIndex)])
        }
        let bytes = f.count >= 3
        if bytes { v *= 1024 }
        out.append(MeminfoField(name: name, value: v, isBytes: bytes))
    }
    return out
}

/// Parses `/proc/loadavg` into the 1, 5 and 15 minute load averages.
public func parseLoadavg(_ text: String) -> (Double, Double, Double)? {
    let f = text.fields
    guard f.count >= 3, let a = Double(f[0]), let b = Double(f[1]), let c = Double(f[2].trimmingNewline) else { return nil }
    return (a, b, c)
}

/// Parses a `/proc/pressure/*` file: the `total=` of its `some` and `full` lines, in microseconds.
public func parsePressure(_ text: String) -> (some: Double?, full: Double?) {
    var some: Double?
    var full: Double?
    for line in lines(text) {
        let f = line.fields
        guard let kind = f.first, let total = f.last?.dropPrefix("total="), let v = Double(total) else { continue }
        if kind == "some" { some = v } else if kind == "full" { full = v }
    }
    return (some, full)
}

/// Parses `name value` lines (`/proc/vmstat`).
public func parseKeyValueLines(_ text: String) -> [(String, Double)] {
    var out: [(String, Double)] = []
    for line in lines(text) {
        let f = line.fields
        guard f.count == 2, let v = Double(f[1]) else { continue }
        out.append((String(f[0]), v))
    }
    return out
}

extension Substring {
    var trimmingNewline: Substring { hasSuffix("\n") ? dropLast() : self }
}
