/// Small helpers shared by the parsers: splitting on ASCII whitespace without Foundation.
extension StringProtocol {
    /// The whitespace-separated fields of the string.
    @inlinable
    var fields: [Substring] {
        self.split(whereSeparator: { $0 == " " || $0 == "\t" })
            .map { Substring($0) }
    }
}

extension Substring {
    /// The text after `prefix` if the string starts with it.
    func dropPrefix(_ prefix: String) -> Substring? {
        hasPrefix(prefix) ? dropFirst(prefix.count) : nil
    }
}

/// Lines of a file, without empty trailing lines.
@inlinable
func lines(_ text: String) -> [Substring] {
    text.split(separator: "\n", omittingEmptySubsequences: true)
}
