import TwinCore
import TwinQuery
import TwinStorage

/// Silences and inhibition: which alerts are kept from notifications and remediation.
public enum AlertSuppression {
    /// Parses silence matchers (`alertname=DiskFull`, `host=~web-.*`, `severity!=info`); at least one, and
    /// unless `everything` is allowed (inhibition targets), not all of them may match the empty label (a
    /// silence of every alert).
    public static func matchers(_ texts: [String], everything: Bool = false) throws -> [Matcher] {
        guard !texts.isEmpty else { throw TwinError.badInput("a silence needs at least one matcher, such as alertname=DiskFull") }
        let ms = try texts.map { text -> Matcher in
            let name = text.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            let rest = text.dropFirst(name.count)
            guard !name.isEmpty, let op = ["=~", "!~", "!=", "="].first(where: { rest.hasPrefix($0) }) else {
                throw TwinError.badInput("matcher '\(text)': write name=value, name!=value, name=~regex or name!~regex")
            }
            var value = String(rest.dropFirst(op.count))
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            let kind: MatchOp = op == "=" ? .equal : op == "!=" ? .notEqual : op == "=~" ? .regex : .notRegex
            do { return try Matcher(name: String(name), op: kind, value: value) } catch {
                throw TwinError.badInput("matcher '\(text)': \(error)")
            }
        }
        guard everything || ms.contains(where: { !$0.matches("") }) else { throw TwinError.badInput("the matchers would silence every alert; name one that does not match an empty label") }
        return ms
    }

    /// Whether an active silence covers `labels` at `t`.
    public static func silenced(_ labels: Labels, by silences: [SilenceRecord], at t: Int64) -> SilenceRecord? {
        silences.first { s in
            s.isActive(at: t) && ((try? matchers(s.matchers))?.allSatisfy { $0.matches(labels[$0.name] ?? "") } ?? false)
        }
    }
}
