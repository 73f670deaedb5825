import Foundation

/// Which `Host` headers the server answers: a defence against DNS rebinding, where a web page the user
/// opens points a name of its own at 127.0.0.1 and reads the twin through the user's browser. Browsers
/// always send the name they resolved, so a name that is not this server's is refused.
///
/// Accepted: IP literals that are the listen address (any IP literal when listening on a wildcard
/// address; an IP literal cannot be rebound), `localhost`, this machine's host name, and the names
/// given with `--allowed-host`. A request without a `Host` header (HTTP/1.0 tools) is not a browser's
/// and is accepted.
public struct HostCheck: Sendable {
    private let names: Set<String>
    private let anyAddress: Bool

    public init(listenHost: String, allowed: [String] = []) {
        let listen = listenHost.lowercased()
        anyAddress = listen == "0.0.0.0" || listen == "::" || listen.isEmpty
        var names: Set<String> = ["localhost", listen, "127.0.0.1", "::1"]
        var buf = [CChar](repeating: 0, count: 256)
        if gethostname(&buf, buf.count) == 0 {
            let name = String(cString: buf).lowercased()
            if !name.isEmpty { names.insert(name) }
        }
        for a in allowed { names.insert(a.lowercased()) }
        self.names = names
    }

    /// Whether a request with this `Host` header is answered.
    public func allows(_ header: String?) -> Bool {
        guard let header, !header.isEmpty else { return true }
        let host = Self.hostPart(header.asciiLowercased)
        if names.contains(host) { return true }
        return anyAddress && Self.isIPLiteral(host)
    }

    /// `name:port` → `name`; `[::1]:9977` → `::1`.
    static func hostPart(_ header: String) -> String {
        if header.hasPrefix("[") {
            guard let close = header.firstIndex(of: "]") else { return header }
            return String(header[header.index(after: header.startIndex)..<close])
        }
        if let colon = header.lastIndex(of: ":"), header.firstIndex(of: ":") == colon { return String(header[..<colon]) }
        return header
    }

    static func isIPLiteral(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}

extension String {
    /// The string lowercased, without a copy when it holds no ASCII capital (most header values).
    var asciiLowercased: String {
        utf8.contains { $0 &- UInt8(ascii: "A") < 26 } ? lowercased() : self
    }
}
