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

/// Calls `body` with each line of `text`, empty ones included, in place: a file of a hundred thousand lines
/// (apt's lists, dpkg's status) is never split into an array.
func forEachLine(_ text: String, _ body: (Substring) -> Void) {
    var rest = text[...]
    while !rest.isEmpty {
        let end = rest.utf8.firstIndex(of: UInt8(ascii: "\n")) ?? rest.endIndex
        body(rest[..<end])
        rest = end == rest.endIndex ? rest[end...] : rest[rest.utf8.index(after: end)...]
    }
}
