import Hummingbird
import NIOCore
import ServiceLifecycle

extension TwinAPI {
    /// `GET /api/v1/twin/live`: server-sent events, one `tick` event per committed tick with the host
    /// summary and the state changes of that tick. Ends when the server shuts down.
    func liveStream(_ p: Params) throws -> Response {
        guard let live else { throw APIError.unavailable("the live stream needs `hosttwin run` (this server only serves a store)") }
        guard streams.acquire(p.caller, limit: access.maxLiveStreamsPerCaller, total: access.maxLiveStreams) else {
            throw APIError(type: "too_many_requests", message: "too many live streams open (at most \(access.maxLiveStreamsPerCaller) per caller, \(access.maxLiveStreams) in all)", status: .tooManyRequests)
        }
        let (streams, caller) = (streams, p.caller)
        let stream = live.subscribe()
        let first = live.message(events: [])
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { writer in
                defer { streams.release(caller) }
                // A server shutting down ends every stream (else it would wait for them forever).
                try await withGracefulShutdownHandler {
                    try await writer.write(ByteBuffer(string: "retry: 2000\n\n" + (first.map { "event: tick\ndata: \($0)\n\n" } ?? "")))
                    for await message in stream {
                        try await writer.write(ByteBuffer(string: "event: tick\ndata: \(message)\n\n"))
                    }
                } onGracefulShutdown: {
                    live.close()
                }
                try await writer.finish(nil)
            }
        )
    }
}
