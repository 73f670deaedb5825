/// Debian package versions ordered as dpkg orders them (`dpkg --compare-versions`): epoch, then the
/// upstream version and the revision each compared by alternating non-digit runs (letters before other
/// characters, `~` before everything, even the end) and numbers.
public enum DebianVersion {
    /// Negative, zero or positive as `a` sorts before, with or after `b`.
    public static func compare(_ a: String, _ b: String) -> Int {
        let (ea, ua, ra) = split(a), (eb, ub, rb) = split(b)
        if ea != eb { return ea < eb ? -1 : 1 }
        let c = compareParts(Array(ua.utf8), Array(ub.utf8))
        return c != 0 ? c : compareParts(Array(ra.utf8), Array(rb.utf8))
    }

    /// Epoch (0 when absent or malformed), upstream version, revision.
    static func split(_ v: String) -> (Int, Substring, Substring) {
        var rest = Substring(v)
        var epoch = 0
        if let colon = rest.firstIndex(of: ":") {
            epoch = Int(rest[..<colon]) ?? 0
            rest = rest[rest.index(after: colon)...]
        }
        if let dash = rest.lastIndex(of: "-") { return (epoch, rest[..<dash], rest[rest.index(after: dash)...]) }
        return (epoch, rest, "")
    }

    private static func order(_ c: UInt8?) -> Int {
        guard let c else { return 0 }
        if c >= 48 && c <= 57 { return 0 }
        if (c >= 65 && c <= 90) || (c >= 97 && c <= 122) { return Int(c) }
        if c == UInt8(ascii: "~") { return -1 }
        return Int(c) + 256
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }

    static func compareParts(_ a: [UInt8], _ b: [UInt8]) -> Int {
        var i = 0, j = 0
        while i < a.count || j < b.count {
            while (i < a.count && !isDigit(a[i])) || (j < b.count && !isDigit(b[j])) {
                let ac = order(i < a.count ? a[i] : nil), bc = order(j < b.count ? b[j] : nil)
                if ac != bc { return ac - bc }
                i += 1; j += 1
            }
            while i < a.count && a[i] == 48 { i += 1 }
            while j < b.count && b[j] == 48 { j += 1 }
            var firstDiff = 0
            while i < a.count && isDigit(a[i]) && j < b.count && isDigit(b[j]) {
                if firstDiff == 0 { firstDiff = Int(a[i]) - Int(b[j]) }
                i += 1; j += 1
            }
            if i < a.count && isDigit(a[i]) { return 1 }
            if j < b.count && isDigit(b[j]) { return -1 }
            if firstDiff != 0 { return firstDiff }
        }
        return 0
    }
}

/// Parses an apt `Packages` index (RFC 822-style stanzas) into `name:architecture` → the highest version
/// it offers, for the keys in `only` when given. Stanzas without a name, version or architecture are skipped.
public func parsePackagesIndex(_ text: String, only wanted: Set<String>? = nil) -> [String: String] {
    var out: [String: String] = [:]
    var name: Substring?, version: Substring?, arch: Substring?
    func flush() {
        if let name, let version, let arch {
            let key = String(name) + ":" + String(arch)
            if let wanted, !wanted.contains(key) { return }
            let v = String(version)
            if let old = out[key], DebianVersion.compare(old, v) >= 0 { return }
            out[key] = v
        }
    }
    forEachLine(text) { line in
        if line.isEmpty { flush(); (name, version, arch) = (nil, nil, nil) }
        else if line.hasPrefix("Package: ") { name = line.dropFirst(9) }
        else if line.hasPrefix("Version: ") { version = line.dropFirst(9) }
        else if line.hasPrefix("Architecture: ") { arch = line.dropFirst(14) }
    }
    flush()
    return out
}
