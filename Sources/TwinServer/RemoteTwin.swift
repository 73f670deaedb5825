import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TwinCore

/// A client of a HostTwin server over HTTP or HTTPS (SwiftNIO): the CLI's `--url`, and later agents.
/// HTTPS verifies the server's certificate and name against the system's roots, or against `--ca FILE`
/// alone; a client certificate can be presented for mutual TLS. One request per connection.
public struct RemoteTwin: Sendable {
    public var host: String
    public var port: Int
    public var useTLS: Bool
    /// PEM CA certificates that alone are trusted for the server (a private CA); nil: the system's.
    public var caFile: String?
    /// A client certificate and key (PEM) for servers that require them.
    public var clientCertificate: String?
    public var clientKey: String?
    /// Sent as `Authorization: Bearer TOKEN`.
    public var token: String?
    public var timeout: TimeAmount = .seconds(30)

    /// A client of `url` (`http://host:port` or `https://host:port`; the path is ignored).
    public init(url: String) throws {
        guard let u = URLComponents(string: url), let scheme = u.scheme?.lowercased(), scheme == "http" || scheme == "https", let host = u.host, !host.isEmpty else {
            throw TwinError.badInput("--url \(url): expected http://HOST:PORT or https://HOST:PORT")
        }
        self.host = host
        useTLS = scheme == "https"
        port = u.port ?? 9977
    }

    public struct Response: Sendable {
        public var status: Int
        public var body: [UInt8]
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// `GET pathAndQuery` (e.g. `/api/v1/query?query=up`).
    public func get(_ pathAndQuery: String) throws -> Response {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let sslContext: NIOSSLContext?
        if useTLS {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            if let caFile {
                do { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile)) } catch { throw TwinError.badInput("--ca \(caFile): cannot read PEM certificates: \(error)") }
            }
            if let clientCertificate, let clientKey {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(clientCertificate).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: clientKey, format: .pem))
            }
            sslContext = try NIOSSLContext(configuration: tls)
        } else { sslContext = nil }
        let collector = ResponseCollector(promise: group.next().makePromise())
        let serverName = host
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        let isIP = serverName.contains(":") || serverName.allSatisfy { $0.isNumber || $0 == "." }
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: isIP ? nil : serverName))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
        let channel: any Channel
        do { channel = try bootstrap.connect(host: host, port: port).wait() } catch {
            throw TwinError.unavailable("cannot connect to \(host):\(port): \(error)")
        }
        var headers = HTTPHeaders([("Host", host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"), ("Accept", "application/json"), ("Connection", "close")])
        if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
        channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: pathAndQuery, headers: headers)), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        let timeoutTask = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        defer { timeoutTask.cancel() }
        do { return try collector.promise.futureResult.wait() } catch {
            throw TwinError.unavailable("\(useTLS ? "https" : "http")://\(host):\(port)\(pathAndQuery): \(error)")
        }
    }

    /// Collects one response; fails the promise if the connection ends first (TLS errors included).
    private final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable { // confined to its event loop
        typealias InboundIn = HTTPClientResponsePart
        let promise: EventLoopPromise<Response>
        private var status = 0
        private var body: [UInt8] = []
        private var done = false
        private let maxBody = 64 << 20

        private func finish(_ result: Result<Response, any Error>, _ context: ChannelHandlerContext) {
            guard !done else { return }
            done = true
            promise.completeWith(result)
            context.close(promise: nil)
        }

        init(promise: EventLoopPromise<Response>) { self.promise = promise }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): status = Int(head.status.code)
            case .body(let buf):
                guard body.count + buf.readableBytes <= maxBody else { return finish(.failure(TwinError.unavailable("response larger than 64 MiB")), context) }
                body += buf.readableBytesView
            case .end: finish(.success(Response(status: status, body: body)), context)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) { finish(.failure(error), context) }

        func channelInactive(context: ChannelHandlerContext) {
            finish(.failure(TwinError.unavailable("the server closed the connection")), context)
        }
    }
}
