import Foundation

/// Scrubs secrets from command lines before they are stored: values of arguments that look like secrets
/// become `***`:
/// - `password=…`, `--token …`, `--api-key=…`, `AWS_SECRET_ACCESS_KEY=…`, `PGPASSWORD=…`, JSON pairs;
/// - URL passwords (`postgres://bob:***@db`), `curl -u user:***` (also `--user`, `--proxy-user`);
/// - HTTP headers given as arguments (`-H 'Authorization: ***'`, `X-Api-Key: ***`, `Cookie: ***`) and
///   `Bearer`/`Basic` credentials anywhere in an argument;
/// - the attached and detached password options of the MySQL tools (`-p***`) and `sshpass -p ***`.
///
/// An argument name counts as secret when one of its words (split at `-`, `_`, `.`) is a secret word,
/// or it contains one of the long secret words (`PGPASSWORD`), so `--ssh-key` and `DB_PASSWORD` are
/// caught while `--keyboard` is not.
public struct Redactor: Sendable {
    public static let mask = "***"
    public static let defaultWords: Set<String> = [
        "password", "passwd", "pass", "pwd", "secret", "token", "key", "apikey", "auth", "credential",
        "credentials", "passphrase", "private", "session", "cookie", "bearer", "authorization",
    ]
    /// Words that mark a name as secret wherever they appear in it (`PGPASSWORD`, `MYSECRETVALUE`).
    static let embeddedWords = ["password", "passwd", "secret", "passphrase", "apikey", "credential"]
    /// Programs whose `-pVALUE` (attached) is a password: the MySQL and MariaDB clients.
    static let attachedPasswordPrograms: Set<String> = [
        "mysql", "mysqldump", "mysqladmin", "mysqlimport", "mysqlshow", "mysqlcheck", "mysqlslap", "mysqlpump",
        "mariadb", "mariadb-dump", "mariadb-admin", "mariadb-import", "mariadb-show", "mariadb-check",
    ]
    /// Options whose next argument (or attached value) is `user:password`.
    static let userPasswordOptions: Set<String> = ["-u", "--user", "--proxy-user", "-U"]

    public var words: Set<String>

    public init(words: Set<String> = Redactor.defaultWords) { self.words = words }

    /// Whether an option or variable name (without leading dashes) names a secret.
    public func isSecretName<S: StringProtocol>(_ name: S) -> Bool {
        let lower = name.lowercased()
        if words.contains(lower) { return true }
        if Self.embeddedWords.contains(where: { lower.utf8Contains($0) }) { return true }
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
        let program = arguments.first.map { String($0.split(separator: "/").last ?? "") } ?? ""
        let attachedPassword = Self.attachedPasswordPrograms.contains(program)
        var maskNext = false, userPasswordNext = false
        for (index, arg) in arguments.enumerated() {
            if maskNext {
                maskNext = false
                if !arg.hasPrefix("-") { out.append(Redactor.mask); continue }
            }
            if userPasswordNext {
                userPasswordNext = false
                if !arg.hasPrefix("-") { out.append(Self.maskingPassword(of: arg)); continue }
            }
            if index > 0 {
                if attachedPassword, arg.hasPrefix("-p"), arg.utf8.count > 2, !arg.hasPrefix("--") {
                    out.append("-p" + Redactor.mask); continue
                }
                if program == "sshpass", arg.hasPrefix("-p") {
                    if arg == "-p" { maskNext = true; out.append(arg) } else { out.append("-p" + Redactor.mask) }
                    continue
                }
                if Self.userPasswordOptions.contains(arg) { userPasswordNext = true; out.append(arg); continue }
                if arg.hasPrefix("-u"), arg.utf8.count > 2, !arg.hasPrefix("--"), arg.utf8Contains(":") {
                    out.append(Self.maskingPassword(of: arg)); continue
                }
            }
            if let header = redactHeader(arg) { out.append(header); continue }
            if let eq = arg.utf8.firstIndex(of: UInt8(ascii: "=")) {
                let name = arg[..<eq].drop { $0 == "-" }
                if !name.isEmpty, !name.utf8Contains(" "), isSecretName(name) {
                    out.append(String(arg[...eq]) + Redactor.mask)
                    continue
                }
                if ["--user", "--proxy-user"].contains(String(arg[..<eq])) {
                    out.append(Self.maskingPassword(of: arg)); continue
                }
            } else if index > 0, arg.hasPrefix("-"), arg.utf8.count > 1, isSecretName(arg.drop { $0 == "-" }) {
                maskNext = true
            }
            out.append(redactSchemeCredentials(redactJSONPairs(redactURLPassword(arg))))
        }
        return out
    }

    /// `user:secret` → `user:***` (the part after the first colon).
    static func maskingPassword(of arg: String) -> String {
        guard let colon = arg.utf8.firstIndex(of: UInt8(ascii: ":")) else { return arg }
        return String(arg[...colon]) + Redactor.mask
    }

    /// An HTTP header written as one argument (`Authorization: Bearer x`, `X-Api-Key: k`,
    /// `--header=Cookie: c`) whose name is secret → the value masked; nil for anything else.
    func redactHeader(_ arg: String) -> String? {
        guard let colon = arg.utf8.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        var nameStart = arg.startIndex
        if arg.hasPrefix("-"), let eq = arg.utf8[..<colon].firstIndex(of: UInt8(ascii: "=")) { nameStart = arg.index(after: eq) }
        let name = arg[nameStart..<colon]
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }),
              !arg[colon...].hasPrefix("://"), isSecretName(name) else { return nil }
        return String(arg[...colon]) + " " + Redactor.mask
    }

    private static let schemeCredential = try! NSRegularExpression(pattern: #"(?i)\b(bearer|basic|digest|token)(\s+)[A-Za-z0-9._~+/=\-]{6,}"#)

    /// `… Bearer eyJ…` anywhere in an argument → `… Bearer ***`.
    func redactSchemeCredentials(_ arg: String) -> String {
        guard arg.utf8Contains(" ") else { return arg }
        let ns = arg as NSString
        return Self.schemeCredential.stringByReplacingMatches(in: arg, range: NSRange(location: 0, length: ns.length), withTemplate: "$1$2" + Redactor.mask)
    }

    private static let jsonPair = try! NSRegularExpression(pattern: #""([A-Za-z0-9_.\-]+)"\s*:\s*"((?:[^"\\]|\\.)*)""#)

    /// `{"API_TOKEN": "abc"}` inside an argument → `{"API_TOKEN": "***"}`.
    func redactJSONPairs(_ arg: String) -> String {
        guard arg.utf8Contains("\":") || arg.utf8Contains("\" :") else { return arg }
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
        guard let schemeEnd = arg.utf8Offset(of: "://") else { return arg }
        let rest = arg[arg.utf8.index(arg.utf8.startIndex, offsetBy: schemeEnd + 3)...]
        guard let at = rest.firstIndex(of: "@") else { return arg }
        let userinfo = rest[..<at]
        guard !userinfo.utf8Contains("/"), let colon = userinfo.firstIndex(of: ":") else { return arg }
        return String(arg[..<colon]) + ":" + Redactor.mask + String(rest[at...])
    }
}

extension StringProtocol {
    /// The UTF-8 offset of the first occurrence of `needle`, compared byte by byte. Foundation's
    /// `contains(_:)` and `range(of:)` bridge to `NSString`, which showed in the collection thread's
    /// profile: every new process's arguments pass through the redactor.
    func utf8Offset(of needle: String) -> Int? {
        let n = needle.utf8
        guard let first = n.first else { return 0 }
        func search(_ h: UnsafeBufferPointer<UInt8>) -> Int? {
            guard h.count >= n.count else { return nil }
            for i in 0...(h.count - n.count) where h[i] == first && n.elementsEqual(h[i..<(i + n.count)]) { return i }
            return nil
        }
        return utf8.withContiguousStorageIfAvailable(search) ?? Array(utf8).withUnsafeBufferPointer(search)
    }

    /// Whether `needle` occurs in the string, compared byte by byte (``utf8Offset(of:)``).
    func utf8Contains(_ needle: String) -> Bool { utf8Offset(of: needle) != nil }
}
