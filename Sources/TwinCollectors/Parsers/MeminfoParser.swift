/// One `/proc/meminfo` field: node_exporter's name for it (`Active(anon)` → `Active_anon`), its value
/// (bytes when the file gives kB) and whether it is in bytes.
public struct MeminfoField: Sendable, Equatable {
    public var name: String
    public var value: Double
    public var isBytes: Bool
}

/// Visits each well-formed `/proc/meminfo` line: its index, the key (without `:`), the value (×1024 when
/// the line has a unit) and whether it had one.
func scanMeminfo(_ s: ByteScanner, _ visit: (Int, Range<Int>, Double, Bool) -> Void) {
    var sc = s
    var f: [Range<Int>] = []
    f.reserveCapacity(4)
    var index = 0
    while let line = sc.nextLine() {
        sc.fields(line, into: &f)
        guard f.count >= 2, f[0].count > 1, s.b[f[0].upperBound - 1] == 58, var v = s.number(f[1]) else { continue }
        let bytes = f.count >= 3
        if bytes { v *= 1024 }
        visit(index, f[0].lowerBound..<(f[0].upperBound - 1), v, bytes)
        index += 1
    }
}

/// node_exporter's metric-name stem for a meminfo key: `Active(anon)` → `Active_anon`.
func meminfoName(_ key: String) -> String {
    guard let open = key.firstIndex(of: "("), key.hasSuffix(")") else { return key }
    return String(key[..<open]) + "_" + String(key[key.index(after: open)..<key.index(before: key.endIndex)])
}

/// Parses `/proc/meminfo`. Lines without a number are skipped.
public func parseMeminfo(_ text: String) -> [MeminfoField] {
    text.withBytes { b in
        var out: [MeminfoField] = []
        let s = ByteScanner(b)
        scanMeminfo(s) { _, key, v, bytes in out.append(MeminfoField(name: meminfoName(s.string(key)), value: v, isBytes: bytes)) }
        return out
    }
}

/// Parses `/proc/loadavg` into the 1, 5 and 15 minute load averages.
public func parseLoadavg(_ b: UnsafeBufferPointer<UInt8>) -> (Double, Double, Double)? {
    let s = ByteScanner(b)
    var sc = s
    guard let line = sc.nextLine() else { return nil }
    var f: [Range<Int>] = []
    s.fields(line, into: &f)
    guard f.count >= 3, let a = s.number(f[0]), let b = s.number(f[1]), let c = s.number(f[2]) else { return nil }
    return (a, b, c)
}

/// ``parseLoadavg(_:)-(UnsafeBufferPointer<UInt8>)`` on a string.
public func parseLoadavg(_ text: String) -> (Double, Double, Double)? { text.withBytes { parseLoadavg($0) } }

/// Parses a `/proc/pressure/*` file: the `total=` of its `some` and `full` lines, in microseconds.
public func parsePressure(_ b: UnsafeBufferPointer<UInt8>) -> (some: Double?, full: Double?) {
    var some: Double?
    var full: Double?
    let s = ByteScanner(b)
    var sc = s
    var f: [Range<Int>] = []
    while let line = sc.nextLine() {
        s.fields(line, into: &f)
        guard let kind = f.first, let last = f.last, s.hasPrefix(last, "total="),
              let v = s.number((last.lowerBound + 6)..<last.upperBound) else { continue }
        if s.equals(kind, "some") { some = v } else if s.equals(kind, "full") { full = v }
    }
    return (some, full)
}

/// ``parsePressure(_:)-(UnsafeBufferPointer<UInt8>)`` on a string.
public func parsePressure(_ text: String) -> (some: Double?, full: Double?) { text.withBytes { parsePressure($0) } }

/// Visits `name value` lines (`/proc/vmstat`, `/proc/net/snmp6`): index, key range, value.
func scanKeyValueLines(_ s: ByteScanner, _ visit: (Int, Range<Int>, Double) -> Void) {
    var sc = s
    var f: [Range<Int>] = []
    f.reserveCapacity(3)
    var index = 0
    while let line = sc.nextLine() {
        sc.fields(line, into: &f)
        guard f.count == 2, let v = s.number(f[1]) else { continue }
        visit(index, f[0], v)
        index += 1
    }
}

/// Parses `name value` lines (`/proc/vmstat`).
public func parseKeyValueLines(_ text: String) -> [(String, Double)] {
    text.withBytes { b in
        var out: [(String, Double)] = []
        let s = ByteScanner(b)
        scanKeyValueLines(s) { _, k, v in out.append((s.string(k), v)) }
        return out
    }
}

extension Substring {
    var trimmingNewline: Substring { hasSuffix("\n") ? dropLast() : self }
}
