import Foundation

/// Scrubs secrets from command lines before they are stored: values of arguments that look like secrets
/// (`password=…`, `--token …`, `--api-key=…`, `AWS_SECRET_ACCESS_KEY=…`, URL passwords) become `***`.
///
/// An argument name counts as secret when one of its words (split at `-`, `_`, `.`) is a secret word,
/// so `--ssh-key` and `DB_PASSWORD` are caught while `--keyboard` is not.
public struct Redactor: Sendable {
    public static let mask = "***"
    public static let defaultWords: Set<String> = [
        "password", "passwd", "pass", "pwd", "secret", "token", "key", "apikey", "auth", "credential",
        "credentials", "passphrase", "private", "session", "cookie", "bearer",
    ]

    public var words: Set<String>

    public init(words: Set<String> = Redactor.defaultWords) { self.words = words }

    /// Whether an option or variable name (without leading dashes) names a secret.
    public func isSecretName<S: StringProtocol>(_ name: S) -> Bool {
        let lower = name.lowercased()
        if words.contains(lower) { return true }
        var word = ""
        for ch in lower {
            if ch == "-" || ch == "_" || ch == "." {
                if words.contains(word) { return true }
                word = ""
            } else { word.append(ch) }
        }
        return words.contains(word)
    }

    /// Redacts an argument vector.
    public func redact(arguments: [String]) -> [String] {
        var out: [String] = []
        out.reserveCapacity(arguments.count)
        var maskNext = false
        for (index, arg) in arguments.enumerated() {
            if maskNext {
                maskNext = false
                if !arg.hasPrefix("-") { out.append(Redactor.mask); continue }
            }
            if let eq = arg.firstIndex(of: "=") {
                let name = arg[..<eq].drop { $0 == "-" }
                if !name.isEmpty, !name.contains(" "), isSecretName(name) {
                    out.append(String(arg[...eq]) + Redactor.mask)
                    continue
                }
            } else if index > 0, arg.hasPrefix("-"), arg.count > 1, isSecretName(arg.drop { $0 == "-" }) {
                maskNext = true
            }
            out.append(redactJSONPairs(redactURLPassword(arg)))
        }
        return out
    }

    private static let jsonPair = try! NSRegularExpression(pattern: #""([A-Za-z0-9_.\-]+)"\s*:\s*"((?:[^"\\]|\\.)*)""#)

    /// `{"API_TOKEN": "abc"}` inside an argument → `{"API_TOKEN": "***"}`.
    func redactJSONPairs(_ arg: String) -> String {
        guard arg.contains("\":") || arg.contains("\" :") else { return arg }
        let ns = arg as NSString
        var result = arg
        for m in Self.jsonPair.matches(in: arg, range: NSRange(location: 0, length: ns.length)).reversed() {
            let name = ns.substring(with: m.range(at: 1))
            guard isSecretName(name), let r = Range(m.range(at: 2), in: result) else { continue }
            result.replaceSubrange(r, with: Redactor.mask)
        }
        return result
    }

    /// Redacts a whole command line joined with spaces (as /proc/PID/cmdline gives it, NUL-separated).
    public func redact(commandLine: String) -> String {
        redact(arguments: commandLine.split(separator: " ", omittingEmptySubsequences: false).map(String.init)).joined(separator: " ")
    }

    /// `scheme://user:secret@host` → `scheme://user:***@host`.
    func redactURLPassword(_ arg: String) -> String {
        guard let schemeEnd = arg.range(of: "://") else { return arg }
        let rest = arg[schemeEnd.upperBound...]
        guard let at = rest.firstIndex(of: "@") else { return arg }
        let userinfo = rest[..<at]
        guard !userinfo.contains("/"), let colon = userinfo.firstIndex(of: ":") else { return arg }
        return String(arg[..<colon]) + ":" + Redactor.mask + String(rest[at...])
    }
}
