import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
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

    /// Builds the application; it is a `Service`, run inside the process's service group.
    public static func application(api: TwinAPI, host: String, port: Int, tls: TLSConfiguration? = nil, logger: Logger,
                                   onServerRunning: (@Sendable (Int) async -> Void)? = nil) throws -> some ApplicationProtocol {
        let http = HTTPServerBuilder.http1(configuration: channelConfiguration)
        return Application(
            responder: CallbackResponder<TwinRequestContext> { request, context in await api.respond(to: request, source: context.source) },
            server: try tls.map { try .tls(http, tlsConfiguration: $0) } ?? http,
            configuration: .init(address: .hostname(host, port: port), serverName: "hosttwin"),
            onServerRunning: { channel in await onServerRunning?(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }
}

/// The request context: Hummingbird's, plus the peer's address (for throttling, limits and the audit log).
public struct TwinRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer's IP address, or "unknown".
    public let source: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        self.source = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }
}
