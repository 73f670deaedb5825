/// One interface line of `/proc/net/dev`: 8 receive and 8 transmit counters.
public struct NetDevLine: Sendable, Equatable {
    public var device: String
    public var receive: [Double]
    public var transmit: [Double]
}

public let netDevReceiveFields = ["bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast"]
public let netDevTransmitFields = ["bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed"]

/// Visits each interface line of `/proc/net/dev`: its index, the device name range and the 16 counters.
func scanNetDev(_ s: ByteScanner, _ visit: (Int, Range<Int>, UnsafeBufferPointer<Double>) -> Void) {
    var sc = s
    var f: [Range<Int>] = []
    f.reserveCapacity(17)
    var nums = [Double](repeating: 0, count: 16)
    var index = 0
    while let line = sc.nextLine() {
        var colon = line.upperBound
        var i = line.upperBound
        while i > line.lowerBound { i -= 1; if s.b[i] == 58 { colon = i; break } }
        guard colon < line.upperBound else { continue }
        var nameStart = line.lowerBound
        while nameStart < colon, s.b[nameStart] == 32 { nameStart += 1 }
        guard nameStart < colon, !s.b[nameStart..<colon].contains(124) else { continue } // no '|' (headers)
        sc.fields((colon + 1)..<line.upperBound, into: &f)
        guard f.count >= 16 else { continue }
        var ok = true
        for k in 0..<16 { guard let v = s.number(f[k]) else { ok = false; break }; nums[k] = v }
        guard ok else { continue }
        nums.withUnsafeBufferPointer { visit(index, nameStart..<colon, $0) }
        index += 1
    }
}

/// Parses `/proc/net/dev`, skipping its two header lines and any malformed line.
public func parseNetDev(_ text: String) -> [NetDevLine] {
    text.withBytes { b in
        var out: [NetDevLine] = []
        let s = ByteScanner(b)
        scanNetDev(s) { _, name, n in
            out.append(NetDevLine(device: s.string(name), receive: Array(n[0..<8]), transmit: Array(n[8..<16])))
        }
        return out
    }
}

/// Visits the values of `/proc/net/snmp` and `/proc/net/netstat`: pairs of lines `Proto: names...` /
/// `Proto: values...`. For each pair it passes the header line's range (a stable cache key), then each
/// column's (column index, protocol, name, value). Mismatched or malformed pairs are skipped.
func scanSNMP(_ s: ByteScanner, header: (Int, Range<Int>) -> Void, _ visit: (Int, Range<Int>, Range<Int>, Double) -> Void) {
    var sc = s
    var names: [Range<Int>] = []
    var values: [Range<Int>] = []
    var pair = 0
    guard var prev = sc.nextLine() else { return }
    while let line = sc.nextLine() {
        sc.fields(prev, into: &names)
        sc.fields(line, into: &values)
        guard let p1 = names.first, let p2 = values.first, p1.count == p2.count, p1.count > 1,
              s.b[p1.upperBound - 1] == 58, s.b[p1].elementsEqual(s.b[p2]), names.count == values.count else {
            prev = line
            continue
        }
        header(pair, prev)
        for j in 1..<names.count {
            if let v = s.number(values[j]) { visit(j - 1, p1.lowerBound..<(p1.upperBound - 1), names[j], v) }
        }
        pair += 1
        guard let next = sc.nextLine() else { return }
        prev = next
    }
}

/// Parses `/proc/net/snmp` and `/proc/net/netstat` into `Proto_Name` keys (node_exporter's names).
public func parseSNMP(_ text: String) -> [(String, Double)] {
    text.withBytes { b in
        var out: [(String, Double)] = []
        let s = ByteScanner(b)
        scanSNMP(s, header: { _, _ in }) { _, proto, name, v in out.append((s.string(proto) + "_" + s.string(name), v)) }
        return out
    }
}

/// Splits a `/proc/net/snmp6` key (`Ip6InReceives`) into node_exporter's `Ip6_InReceives`.
func snmp6Key(_ key: String) -> String? {
    guard let six = key.firstIndex(of: "6") else { return nil }
    let rest = key[key.index(after: six)...]
    return rest.isEmpty ? nil : key[...six] + "_" + rest
}

/// Parses `/proc/net/snmp6` (`Ip6InReceives 123` lines) into `Ip6_InReceives` keys, as node_exporter names them.
public func parseSNMP6(_ text: String) -> [(String, Double)] {
    parseKeyValueLines(text).compactMap { k, v in snmp6Key(k).map { ($0, v) } }
}

/// Parses `/proc/net/sockstat` or `sockstat6` into `PROTO_field` keys (`TCP_inuse`, `sockets_used`).
public func parseSockstat(_ text: String) -> [(String, Double)] {
    var out: [(String, Double)] = []
    for line in lines(text) {
        let f = line.fields
        guard f.count >= 3, f[0].hasSuffix(":"), (f.count - 1) % 2 == 0 else { continue }
        let proto = f[0].dropLast()
        var i = 1
        while i + 1 < f.count {
            if let v = Double(f[i + 1]) { out.append((proto + "_" + f[i], v)) }
            i += 2
        }
    }
    return out
}

/// The `inuse` count of one protocol's line of `/proc/net/sockstat` or `sockstat6` (`UDP: inuse 3 mem 1`:
/// `line` is `"UDP:"`), read from the bytes without allocating (it is read at every tick); nil when the line
/// or its count is missing.
public func sockstatInUse(_ bytes: UnsafeBufferPointer<UInt8>, line protocolField: StaticString) -> Double? {
    var s = ByteScanner(bytes)
    var fields: [Range<Int>] = []
    fields.reserveCapacity(8)
    while let line = s.nextLine() {
        guard s.hasPrefix(line, protocolField) else { continue }
        s.fields(line, into: &fields)
        guard fields.count >= 3, s.equals(fields[0], protocolField) else { continue }
        var i = 1
        while i + 1 < fields.count {
            if s.equals(fields[i], "inuse") { return s.number(fields[i + 1]) }
            i += 2
        }
        return nil
    }
    return nil
}

/// Every protocol's `inuse` count in `/proc/net/sockstat` or `sockstat6`, in the file's order, appended to
/// `counts` (without the tracepoint, the sockets collector compares them at every tick to tell whether a
/// connection may have come or gone); read from the bytes without allocating beyond `counts`. A line that
/// is not `NAME: key value ...` or a count that is not a number is left out, as ``parseSockstat(_:)`` does.
/// Returns the count of the line named `reporting` (`"UDP:"`), nil when there is none, so one read of the
/// file serves the UDP dump's decision too.
@discardableResult
public func everySockstatInUse(_ bytes: UnsafeBufferPointer<UInt8>, into counts: inout [Double],
                               reporting protocolField: StaticString? = nil) -> Double? {
    var s = ByteScanner(bytes)
    var fields: [Range<Int>] = []
    fields.reserveCapacity(16)
    var reported: Double?
    while let line = s.nextLine() {
        s.fields(line, into: &fields)
        guard fields.count >= 3, (fields.count - 1) % 2 == 0, bytes[fields[0].upperBound - 1] == UInt8(ascii: ":") else { continue }
        var i = 1
        while i + 1 < fields.count {
            if s.equals(fields[i], "inuse"), let v = s.number(fields[i + 1]) {
                counts.append(v)
                if let protocolField, reported == nil, s.equals(fields[0], protocolField) { reported = v }
            }
            i += 2
        }
    }
    return reported
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return s
    }
}
