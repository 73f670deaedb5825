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
        try request(.GET, pathAndQuery)
    }

    /// `POST path` with `form` as an `application/x-www-form-urlencoded` body.
    public func post(_ path: String, form: [(String, String)]) throws -> Response {
        try request(.POST, path, body: Array(Self.formBody(form).utf8), contentType: "application/x-www-form-urlencoded")
    }

    /// `POST path` with a JSON body (notifications to Alertmanager and webhooks).
    public func post(_ path: String, json: [UInt8]) throws -> Response {
        try request(.POST, path, body: json, contentType: "application/json")
    }

    private func request(_ method: HTTPMethod, _ pathAndQuery: String, body: [UInt8]? = nil, contentType: String? = nil) throws -> Response {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let (channel, response) = try send(method, pathAndQuery, body: body, contentType: contentType, group: group)
        let timeoutTask = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        defer { timeoutTask.cancel() }
        do { return try response.wait() } catch {
            throw TwinError.unavailable("\(useTLS ? "https" : "http")://\(host):\(port)\(pathAndQuery): \(error)")
        }
    }

    /// `GET pathAndQuery`, or `POST` of `form` when given, awaited without holding a thread (an agent's long
    /// poll); cancelling the task closes the connection.
    public func fetch(_ pathAndQuery: String, form: [(String, String)]? = nil) async throws -> Response {
        try await fetch(form == nil ? .GET : .POST, pathAndQuery, body: form.map { Array(Self.formBody($0).utf8) },
                        contentType: "application/x-www-form-urlencoded")
    }

    /// One request awaited without holding a thread, on `group` when given (a sender's own event loop,
    /// shared by its requests) or on one made for it; cancelling the task closes the connection.
    public func fetch(_ method: HTTPMethod, _ pathAndQuery: String, body: [UInt8]?, contentType: String?,
                      headers extra: [(String, String)] = [], group shared: (any EventLoopGroup)? = nil) async throws -> Response {
        let group: any EventLoopGroup = shared ?? MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let result: Result<Response, any Error>
        do {
            let collector = ResponseCollector(promise: group.next().makePromise())
            let channel: any Channel
            do { channel = try await bootstrap(group: group, handler: collector).connect(host: host, port: port).get() } catch {
                collector.promise.fail(error)
                throw error
            }
            let response = write(method, pathAndQuery, body: body, contentType: contentType, headers: extra, to: channel, collector: collector)
            let timeoutTask = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
            // Cancelled before the event loop shuts down (nothing can be scheduled on it after).
            defer { timeoutTask.cancel() }
            result = .success(try await withTaskCancellationHandler { try await response.get() } onCancel: { channel.close(promise: nil) })
        } catch {
            result = .failure(TwinError.unavailable("\(useTLS ? "https" : "http")://\(host):\(port)\(pathAndQuery): \(error)"))
        }
        if shared == nil { try? await group.shutdownGracefully() }
        return try result.get()
    }

    static func formBody(_ form: [(String, String)]) -> String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        return form.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&")
    }

    /// Connects and sends one request; the response's future.
    private func send(_ method: HTTPMethod, _ pathAndQuery: String, body: [UInt8]?, contentType: String?,
                      group: MultiThreadedEventLoopGroup) throws -> (any Channel, EventLoopFuture<Response>) {
        let collector = ResponseCollector(promise: group.next().makePromise())
        let channel: any Channel
        do { channel = try connect(group: group, handler: collector) } catch {
            collector.promise.fail(error) // a promise must be completed before it goes away
            throw error
        }
        return (channel, write(method, pathAndQuery, body: body, contentType: contentType, to: channel, collector: collector))
    }

    /// Writes one request on `channel`; the response's future.
    private func write(_ method: HTTPMethod, _ pathAndQuery: String, body: [UInt8]?, contentType: String?, headers extra: [(String, String)] = [],
                       to channel: any Channel, collector: ResponseCollector) -> EventLoopFuture<Response> {
        var headers = requestHeaders()
        for (name, value) in extra { headers.add(name: name, value: value) }
        headers.add(name: "Accept", value: "application/json")
        headers.add(name: "Connection", value: "close")
        if let body {
            headers.add(name: "Content-Type", value: contentType ?? "application/octet-stream")
            headers.add(name: "Content-Length", value: String(body.count))
        }
        channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: pathAndQuery, headers: headers)), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        return collector.promise.futureResult
    }

    /// Opens `POST path` with a body streamed chunk by chunk and a response read as it comes: the sync
    /// protocol's push. The stream owns its connection and event loop until ``RemoteStream/close()``.
    public func stream(post path: String, contentType: String, headers extra: [(String, String)] = []) async throws -> RemoteStream {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (chunks, continuation) = AsyncThrowingStream.makeStream(of: [UInt8].self)
        let reader = ChunkReader(continuation: continuation)
        do {
            let channel = try connect(group: group, handler: reader)
            var headers = requestHeaders()
            headers.add(name: "Content-Type", value: contentType)
            headers.add(name: "Transfer-Encoding", value: "chunked")
            for (name, value) in extra { headers.add(name: name, value: value) }
            try await channel.writeAndFlush(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers))).get()
            return RemoteStream(channel: channel, group: group, chunks: chunks)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private func requestHeaders() -> HTTPHeaders {
        var headers = HTTPHeaders([("Host", host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")])
        if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
        return headers
    }

    /// A connected channel with TLS (when asked for), HTTP client handlers and `handler` last.
    private func connect(group: MultiThreadedEventLoopGroup, handler: some ChannelHandler & Sendable) throws -> any Channel {
        do { return try bootstrap(group: group, handler: handler).connect(host: host, port: port).wait() } catch {
            throw TwinError.unavailable("cannot connect to \(host):\(port): \(error)")
        }
    }

    private func bootstrap(group: any EventLoopGroup, handler: some ChannelHandler & Sendable) throws -> ClientBootstrap {
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
        let serverName = host
        return ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        let isIP = serverName.contains(":") || serverName.allSatisfy { $0.isNumber || $0 == "." }
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: isIP ? nil : serverName))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
    }

    /// Passes a streamed response on as it comes; a status other than 200 ends the stream with its body
    /// as the error.
    private final class ChunkReader: ChannelInboundHandler, @unchecked Sendable { // confined to its event loop
        typealias InboundIn = HTTPClientResponsePart
        let continuation: AsyncThrowingStream<[UInt8], any Error>.Continuation
        private var status = 0
        private var refusal: [UInt8] = []

        init(continuation: AsyncThrowingStream<[UInt8], any Error>.Continuation) { self.continuation = continuation }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head): status = Int(head.status.code)
            case .body(let buf):
                if status == 200 { continuation.yield(Array(buf.readableBytesView)) } else if refusal.count < 4096 { refusal += buf.readableBytesView }
            case .end:
                if status == 200 { continuation.finish() } else {
                    continuation.finish(throwing: TwinError.unavailable("HTTP \(status): \(String(decoding: refusal.prefix(500), as: UTF8.self))"))
                }
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            continuation.finish(throwing: error)
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            continuation.finish(throwing: TwinError.unavailable("the server closed the connection"))
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

/// A streamed request in flight (``RemoteTwin/stream(post:contentType:)``): body chunks go up as they
/// are sent, response lines come down as they arrive.
public final class RemoteStream: Sendable {
    private let channel: any Channel
    private let group: MultiThreadedEventLoopGroup
    /// The response's bytes as they arrive; ends when the server ends it, throws when the connection fails
    /// or the server answered with another status than 200 (its body is the error).
    public let chunks: AsyncThrowingStream<[UInt8], any Error>

    init(channel: any Channel, group: MultiThreadedEventLoopGroup, chunks: AsyncThrowingStream<[UInt8], any Error>) {
        self.channel = channel
        self.group = group
        self.chunks = chunks
    }

    /// The response line by line (lines longer than 1 MiB end it with an error). Read `chunks` or `lines`, not both.
    public var lines: AsyncThrowingStream<String, any Error> {
        let chunks = chunks
        return AsyncThrowingStream { continuation in
            let task = Task {
                var pending: [UInt8] = []
                do {
                    for try await chunk in chunks {
                        pending += chunk
                        while let nl = pending.firstIndex(of: 0x0A) {
                            continuation.yield(String(decoding: pending[..<nl], as: UTF8.self))
                            pending.removeSubrange(...nl)
                        }
                        if pending.count > 1 << 20 { throw TwinError.unavailable("response line longer than 1 MiB") }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Sends `bytes` as one chunk of the body and flushes it.
    public func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: bytes)))).get()
    }

    /// Ends the request body (the server then ends its response).
    public func finish() async throws {
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
    }

    /// Closes the connection and its event loop.
    public func close() async {
        try? await channel.close().get()
        try? await group.shutdownGracefully()
    }
}
