/// Line differences between two texts, and their unified form (`diff -u`), for configuration history.
/// The edit script is the standard library's (Myers' algorithm, `CollectionDifference`).
public enum TextDiff {
    /// One line of an edit script.
    public enum Line: Equatable, Sendable {
        case same(String), removed(String), added(String)
    }

    /// The lines of `text` without their newlines (a final newline does not open another line).
    public static func split(_ text: String) -> [String] {
        if text.isEmpty { return [] }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if text.hasSuffix("\n") { lines.removeLast() }
        return lines
    }

    /// The edit script from `old` to `new`, in order.
    public static func lines(_ old: String, _ new: String) -> [Line] {
        let a = split(old), b = split(new)
        var removed = Set<Int>(), inserted = Set<Int>()
        for change in b.difference(from: a) {
            switch change {
            case .remove(let offset, _, _): removed.insert(offset)
            case .insert(let offset, _, _): inserted.insert(offset)
            }
        }
        var out: [Line] = []
        out.reserveCapacity(max(a.count, b.count))
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if i < a.count, removed.contains(i) { out.append(.removed(a[i])); i += 1 }
            else if j < b.count, inserted.contains(j) { out.append(.added(b[j])); j += 1 }
            else { out.append(.same(a[i])); i += 1; j += 1 }
        }
        return out
    }

    /// The unified diff (`--- from`, `+++ to`, `@@` hunks with `context` lines around each change); empty when
    /// the texts have the same lines.
    public static func unified(_ old: String, _ new: String, from: String, to: String, context: Int = 3) -> String {
        let script = lines(old, new)
        // Old and new line numbers (1-based) before each entry.
        var before: [(old: Int, new: Int)] = []
        before.reserveCapacity(script.count)
        var o = 1, n = 1
        var changed: [Int] = []
        for (k, line) in script.enumerated() {
            before.append((o, n))
            switch line {
            case .same: o += 1; n += 1
            case .removed: o += 1; changed.append(k)
            case .added: n += 1; changed.append(k)
            }
        }
        guard !changed.isEmpty else { return "" }
        var hunks: [(Int, Int)] = []
        for k in changed {
            let lo = max(0, k - context), hi = min(script.count - 1, k + context)
            if let last = hunks.last, lo <= last.1 + 1 { hunks[hunks.count - 1].1 = hi } else { hunks.append((lo, hi)) }
        }
        var out = "--- \(from)\n+++ \(to)\n"
        for (lo, hi) in hunks {
            var oc = 0, nc = 0, body = ""
            for line in script[lo...hi] {
                switch line {
                case .same(let s): oc += 1; nc += 1; body += " " + s + "\n"
                case .removed(let s): oc += 1; body += "-" + s + "\n"
                case .added(let s): nc += 1; body += "+" + s + "\n"
                }
            }
            // An empty side names the line before it, as diff(1) does.
            let os = oc == 0 ? before[lo].old - 1 : before[lo].old, ns = nc == 0 ? before[lo].new - 1 : before[lo].new
            out += "@@ -\(os),\(oc) +\(ns),\(nc) @@\n" + body
        }
        return out
    }
}
