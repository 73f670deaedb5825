#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A minimal HTTP/1.1 client for a server on 127.0.0.1, for health checks, benchmarks and tests: no
/// client library (and none of its memory) in the process that asks.
public enum LoopbackHTTP {
    /// The status code and body of `GET path`, or nil when nothing answers within `timeout` seconds.
    public static func get(port: Int, _ path: String, timeout: Int = 5) -> (status: Int, body: String)? {
        request(port: port, method: "GET", path: path, timeout: timeout).map { ($0.status, $0.body) }
    }

    /// Opens `GET path` and hands each line of the (server-sent events) body to `onLine` until the server
    /// ends the stream or `onLine` returns false. Returns the status code, or nil when nothing answers.
    public static func stream(port: Int, _ path: String, headers: [String: String] = [:], onLine: (String) -> Bool) -> Int? {
        guard let fd = connectLoopback(port: port, timeout: 0) else { return nil }
        defer { close(fd) }
        let extra = headers.map { "\($0.key): \($0.value)\r\n" }.joined()
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\(extra)\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else { return nil }
        var pending = [UInt8]()     // received, not yet parsed
        var body = [UInt8]()        // de-chunked body bytes not yet split into lines
        var status: Int?
        var chunked = false
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return status }
            pending += buf[0..<n]
            if status == nil {
                guard let end = pending.firstRange(of: [13, 10, 13, 10]) else { continue }
                let head = String(decoding: pending[..<end.lowerBound], as: UTF8.self)
                status = head.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) }
                chunked = head.lowercased().contains("transfer-encoding: chunked")
                pending.removeSubrange(..<end.upperBound)
                if status != 200 { return status }
            }
            if chunked {
                guard let chunk = Self.takeChunks(&pending) else { return status } // the last chunk, or not chunked after all
                body += chunk
            } else {
                body += pending
                pending.removeAll()
            }
            while let nl = body.firstIndex(of: 10) {
                let line = String(decoding: body[..<nl], as: UTF8.self)
                body.removeSubrange(...nl)
                if !onLine(line.hasSuffix("\r") ? String(line.dropLast()) : line) { return status }
            }
        }
    }

    static func connectLoopback(port: Int, timeout: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        if timeout > 0 {
            var tv = timeval(tv_sec: timeout, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { close(fd); return nil }
        return fd
    }

    /// Sends one request (`body` with its content type, if any) and reads the whole answer.
    public static func request(port: Int, method: String, path: String, contentType: String? = nil, headers extra: [String: String] = [:],
                               body: [UInt8] = [], timeout: Int = 5) -> (status: Int, headers: [String: String], body: String)? {
        guard let fd = connectLoopback(port: port, timeout: timeout) else { return nil }
        defer { close(fd) }
        var head = "\(method) \(path) HTTP/1.1\r\nConnection: close\r\n"
        if !extra.keys.contains(where: { $0.lowercased() == "host" }) { head += "Host: 127.0.0.1\r\n" }
        if let contentType { head += "Content-Type: \(contentType)\r\n" }
        for (k, v) in extra { head += "\(k): \(v)\r\n" }
        if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
        let request = Array((head + "\r\n").utf8) + body
        var sent = 0
        while sent < request.count {
            let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break } // the server may answer (413) and close before reading everything
            sent += n
        }
        var data = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            data += buf[0..<n]
        }
        let text = String(decoding: data, as: UTF8.self)
        guard let code = text.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap({ Int($0) }),
              let headerEnd = text.range(of: "\r\n\r\n") else { return nil }
        var headers: [String: String] = [:]
        for line in text[..<headerEnd.lowerBound].split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var payload = String(text[headerEnd.upperBound...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            var rest = Array(payload.utf8)
            payload = String(decoding: takeChunks(&rest) ?? [], as: UTF8.self)
        }
        return (code, headers, payload)
    }

    /// One kept-alive connection, as a Grafana data source holds one: requests go one after another on
    /// the same socket; a closed or broken connection is reopened for the next request.
    public final class Connection {
        let port: Int
        let timeout: Int
        private var fd: Int32 = -1
        private var pending: [UInt8] = []
        private var buffer = [UInt8](repeating: 0, count: 65536)

        public init(port: Int, timeout: Int = 60) {
            self.port = port
            self.timeout = timeout
        }

        deinit { if fd >= 0 { close(fd) } }

        /// Sends a request and reads its whole answer; returns the status and the body's length, or nil
        /// when the server does not answer (after one reconnection).
        public func send(method: String, path: String, contentType: String? = nil, body: [UInt8] = []) -> (status: Int, bodyBytes: Int)? {
            for _ in 0..<2 {
                if fd < 0 {
                    guard let c = LoopbackHTTP.connectLoopback(port: port, timeout: timeout) else { return nil }
                    fd = c
                    pending.removeAll()
                }
                if let r = exchange(method, path, contentType, body) { return r }
                close(fd)
                fd = -1
            }
            return nil
        }

        private func exchange(_ method: String, _ path: String, _ contentType: String?, _ body: [UInt8]) -> (status: Int, bodyBytes: Int)? {
            var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            if let contentType { head += "Content-Type: \(contentType)\r\n" }
            if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
            let request = Array((head + "\r\n").utf8) + body
            var sent = 0
            while sent < request.count {
                let n = request.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return nil }
                sent += n
            }
            func fill() -> Bool {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return false }
                pending += buffer[0..<n]
                return true
            }
            var headerEnd = pending.firstRange(of: [13, 10, 13, 10])
            while headerEnd == nil {
                guard fill() else { return nil }
                headerEnd = pending.firstRange(of: [13, 10, 13, 10])
            }
            let headText = String(decoding: pending[..<headerEnd!.lowerBound], as: UTF8.self).lowercased()
            pending.removeSubrange(..<headerEnd!.upperBound)
            guard let status = headText.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap({ Int($0) }) else { return nil }
            var length: Int?, chunked = false, closes = false
            for line in headText.split(separator: "\r\n").dropFirst() {
                if line.hasPrefix("content-length:") { length = Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces)) }
                if line.hasPrefix("transfer-encoding:"), line.contains("chunked") { chunked = true }
                if line.hasPrefix("connection:"), line.contains("close") { closes = true }
            }
            var bodyBytes = 0
            if chunked {
                while true {
                    guard let chunk = LoopbackHTTP.takeChunks(&pending) else { break }
                    bodyBytes += chunk.count
                    if chunk.isEmpty { guard fill() else { return nil } }
                }
                // The last chunk's line and the empty trailer.
                while pending.firstRange(of: [13, 10, 13, 10]) == nil { guard fill() else { return nil } }
                pending.removeSubrange(..<pending.firstRange(of: [13, 10, 13, 10])!.upperBound)
            } else if let length {
                while pending.count < length { guard fill() else { return nil } }
                pending.removeSubrange(..<length)
                bodyBytes = length
            } else {
                while fill() {}
                bodyBytes = pending.count
                closes = true
            }
            if closes {
                close(fd)
                fd = -1
            }
            return (status, bodyBytes)
        }
    }

    /// Removes the whole chunks (`size CRLF data CRLF`) at the front of `pending` and returns their data;
    /// nil at the final zero-size chunk or a malformed size line. A partial chunk stays in `pending`.
    static func takeChunks(_ pending: inout [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        while let lineEnd = pending.firstRange(of: [13, 10]) {
            let sizeText = String(decoding: pending[..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText, radix: 16), size > 0 else { return out.isEmpty ? nil : out }
            guard pending.count >= lineEnd.upperBound + size + 2 else { break }
            out += pending[lineEnd.upperBound..<lineEnd.upperBound + size]
            pending.removeSubrange(..<(lineEnd.upperBound + size + 2))
        }
        return out
    }
}
