import Hummingbird
import NIOCore
import ServiceLifecycle

extension TwinAPI {
    /// `GET /api/v1/twin/live`: server-sent events, one `tick` event per committed tick with the host
    /// summary and the state changes of that tick. Ends when the server shuts down.
    func liveStream() throws -> Response {
        guard let live else { throw APIError.unavailable("the live stream needs `hosttwin run` (this server only serves a store)") }
        let stream = live.subscribe()
        let first = live.message(events: [])
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { writer in
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
