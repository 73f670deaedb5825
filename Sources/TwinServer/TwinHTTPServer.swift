import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization
import TwinCore

/// The HTTP face of a twin (Hummingbird): ``TwinAPI`` behind one responder, over HTTP/1.1, optionally TLS.
public enum TwinHTTPServer {
    /// Parses `HOST:PORT` (`[::1]:9977` for IPv6), refusing anything else with a clear message.
    public static func parseListen(_ text: String) throws -> (host: String, port: Int) {
        var host: Substring
        var portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw TwinError.badInput("--listen \(text): expected [IPv6]:PORT")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw TwinError.badInput("--listen \(text): expected HOST:PORT, e.g. 127.0.0.1:9977") }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard let port = Int(portText), (0...65535).contains(port) else { throw TwinError.badInput("--listen \(text): port must be 0-65535") }
        if host.isEmpty { host = "127.0.0.1" }
        return (String(host), port)
    }

    /// Whether `host` is a loopback address or name (the default, safe to serve without TLS and tokens).
    public static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased()
        return h == "localhost" || h == "::1" || h.hasPrefix("127.")
    }

    /// TLS for the server: the certificate chain and key (PEM), and when `clientCA` is given, client
    /// certificates signed by it are required (mTLS). TLS 1.2 at least.
    public static func tlsConfiguration(certificate: String, key: String, clientCA: String?) throws -> TLSConfiguration {
        let chain: [NIOSSLCertificate], privateKey: NIOSSLPrivateKey
        do { chain = try NIOSSLCertificate.fromPEMFile(certificate) } catch { throw TwinError.badInput("--tls-cert \(certificate): cannot read a PEM certificate chain: \(error)") }
        do { privateKey = try NIOSSLPrivateKey(file: key, format: .pem) } catch { throw TwinError.badInput("--tls-key \(key): cannot read a PEM private key: \(error)") }
        guard !chain.isEmpty else { throw TwinError.badInput("--tls-cert \(certificate): no certificate in the file") }
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        tls.minimumTLSVersion = .tlsv12
        if let clientCA {
            let roots: [NIOSSLCertificate]
            do { roots = try NIOSSLCertificate.fromPEMFile(clientCA) } catch { throw TwinError.badInput("--tls-client-ca \(clientCA): cannot read PEM certificates: \(error)") }
            tls.trustRoots = .certificates(roots)
            tls.certificateVerification = .noHostnameVerification
        }
        return tls
    }

    /// Per-connection limits: headers (16 KiB a field, 64 KiB in all, 100 fields) and a connection idle
    /// for 30 s is closed (slow or silent clients hold nothing for long).
    static var channelConfiguration: HTTP1Channel.Configuration {
        HTTP1Channel.Configuration(idleTimeout: .seconds(30),
                                   httpDecoderConfiguration: .init(maxHeaderFieldSize: 16 * 1024, maxHeaderListSize: 64 * 1024, maxHeaderFieldCount: 100))
    }

    /// The error a service group ended with, saying which address could not be listened on when it was the
    /// server's bind (the socket error alone names no address).
    public static func explainingListen(_ error: any Error, host: String, port: Int) -> any Error {
        guard let io = error as? IOError, [EADDRINUSE, EADDRNOTAVAIL, EACCES].contains(io.errnoCode) else { return error }
        let address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        return TwinError.unavailable("cannot listen on \(address): \(String(cString: strerror(io.errnoCode))) (--listen sets another address)")
    }

    /// Builds the server, a `Service` run inside the process's service group.
    public static func service(api: TwinAPI, host: String, port: Int, tls: TLSConfiguration? = nil, logger: Logger,
                               onServerRunning: (@Sendable (Int) async -> Void)? = nil) throws -> TwinHTTPService {
        let http = HTTPServerBuilder.http1(configuration: channelConfiguration)
        let builder = try tls.map { try HTTPServerBuilder.tls(http, tlsConfiguration: $0) } ?? http
        let date = HTTPDateHeader()
        let server = try builder.buildServer(
            configuration: ServerConfiguration(address: .hostname(host, port: port), serverName: "hosttwin"),
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger,
            responder: { request, writer, channel in
                var response = await api.respond(to: request, source: channel.remoteAddress?.ipAddress ?? "unknown")
                response.headers[.date] = date.now()
                response.headers[.server] = "hosttwin"
                do {
                    try await writer.write(response: response.head, body: response.body)
                } catch is HTTPParserError {
                    // Part of the response may be out: the connection must close, not answer 400 after it.
                    throw ResponseWriteFailed()
                }
            },
            onServerRunning: { channel in await onServerRunning?(channel.localAddress?.port ?? port) })
        return TwinHTTPService(server: server)
    }

    struct ResponseWriteFailed: Error {}
}

/// The HTTP server as a service. Hummingbird's `Application` runs one more service beside the server: a task
/// that formats the `Date` header every second, with a timer and a calendar computation each second of an
/// idle twin (about 5 % of a quiet `run`'s CPU with the timer's dispatch; docs/OBSERVATION.md). Here the
/// header is formatted when a response is written in a new second (``HTTPDateHeader``).
public struct TwinHTTPService: Service {
    let server: any Service
    public func run() async throws { try await server.run() }
}

/// The `Date` header (RFC 9110's IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT"), formatted at most once a second.
final class HTTPDateHeader: Sendable {
    private let cached = Mutex<(second: Int, text: String)>((.min, ""))

    func now() -> String {
        let second = time(nil)
        return cached.withLock { c in
            if c.second != second { c = (second, Self.format(second)) }
            return c.text
        }
    }

    static func format(_ second: Int) -> String { TwinTime.httpDate(Int64(second)) }
}
