import TwinCore

/// A label regular expression, anchored at both ends as PromQL requires, matched in linear time
/// (``LinearRegex``: no pattern can make a query backtrack for ever). Literal alternatives (`a|b|c`) and
/// `.*` skip the regex engine.
struct AnchoredRegex: Sendable {
    private enum Kind { case any, nonEmpty, literals(Set<String>), regex(LinearRegex) }
    private let kind: Kind

    init(_ pattern: String) throws {
        let meta = Set("\\^$.|?*+()[]{}")
        if pattern == ".*" { kind = .any; return }
        if pattern == ".+" { kind = .nonEmpty; return }
        if !pattern.contains(where: { meta.contains($0) && $0 != "|" }) {
            kind = .literals(Set(pattern.split(separator: "|", omittingEmptySubsequences: false).map(String.init)))
            return
        }
        do { kind = .regex(try LinearRegex(pattern)) } catch {
            throw PromQLError.parse(position: 0, message: "invalid regular expression \"\(pattern)\": \(error)")
        }
    }

    /// Whether the regex engine runs for this pattern (a match costs more than a set lookup).
    var isRegex: Bool { if case .regex = kind { return true } else { return false } }

    func matches(_ s: String) -> Bool {
        switch kind {
        case .any: return true
        case .nonEmpty: return !s.isEmpty
        case .literals(let set): return set.contains(s)
        case .regex(let re): return re.wholeMatch(s)
        }
    }
}
