import Foundation

/// A label regular expression, anchored at both ends as PromQL requires. Literal alternatives
/// (`a|b|c`) and `.*` skip the regex engine.
struct AnchoredRegex: @unchecked Sendable {
    private enum Kind { case any, nonEmpty, literals(Set<String>), regex(NSRegularExpression) }
    private let kind: Kind

    init(_ pattern: String) throws {
        let meta = Set("\\^$.|?*+()[]{}")
        if pattern == ".*" { kind = .any; return }
        if pattern == ".+" { kind = .nonEmpty; return }
        if !pattern.contains(where: { meta.contains($0) && $0 != "|" }) {
            kind = .literals(Set(pattern.split(separator: "|", omittingEmptySubsequences: false).map(String.init)))
            return
        }
        do { kind = .regex(try NSRegularExpression(pattern: "^(?:" + pattern + ")$", options: [.dotMatchesLineSeparators])) } catch {
            throw PromQLError.parse(position: 0, message: "invalid regular expression \"\(pattern)\": \(error.localizedDescription)")
        }
    }

    func matches(_ s: String) -> Bool {
        switch kind {
        case .any: return true
        case .nonEmpty: return !s.isEmpty
        case .literals(let set): return set.contains(s)
        case .regex(let re): return re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
        }
    }
}
