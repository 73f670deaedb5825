import Hummingbird
import NIOCore

/// What a hub does with Prometheus remote_write requests (TwinRuntime's `HubReceiver` applies them).
public protocol RemoteWriteReceiver: Sendable {
    /// Applies one request body (a snappy-compressed `WriteRequest`). Throws `TwinError.badInput` (400)
    /// for a body that is not one; other errors are the store's (the sender retries).
    func remoteWrite(_ body: [UInt8]) async throws -> RemoteWriteSummary
}

/// What a hub did with one remote_write request.
public struct RemoteWriteSummary: Sendable {
    public var samples: Int
    /// Series refused (invalid, or without the label naming their host), with why for the first few.
    public var refused: Int
    public var refusals: [String]

    public init(samples: Int, refused: Int, refusals: [String]) {
        self.samples = samples
        self.refused = refused
        self.refusals = refusals
    }
}

extension TwinAPI {
    /// The largest compressed remote_write body accepted (Prometheus sends well under 1 MiB).
    static let maxRemoteWriteBytes = 16 << 20

    /// `POST /api/v1/write`: Prometheus remote_write 1.0 into a hub. 204 when every series was stored (or
    /// held already); 400 with the reasons when some series were refused (the rest are stored, and the
    /// sender does not retry a 400, as with Prometheus' own receiver); 5xx when storing failed (the sender
    /// retries).
    func remoteWrite(_ request: Request) async throws -> Response {
        var request = request
        guard let receiver = remoteWriteReceiver else {
            throw APIError.unavailable("this server does not accept remote_write (a hub does: `hosttwin serve` on a data directory no `run` writes, without --follow)")
        }
        if let encoding = request.headers[.contentEncoding], encoding.lowercased() != "snappy" {
            throw APIError(type: "bad_data", message: "remote_write bodies are snappy-compressed (Content-Encoding: snappy), not \(encoding)", status: .unsupportedMediaType)
        }
        let buffer: ByteBuffer
        do { buffer = try await request.collectBody(upTo: Self.maxRemoteWriteBytes) } catch {
            throw APIError(type: "bad_data", message: "remote_write body larger than \(Self.maxRemoteWriteBytes) bytes", status: .contentTooLarge)
        }
        let summary = try await receiver.remoteWrite(Array(buffer.readableBytesView))
        guard summary.refused == 0 else {
            let reasons = summary.refusals.joined(separator: "; ")
            throw APIError.badData("\(summary.refused) series refused (\(reasons)); \(summary.samples) samples of the others stored")
        }
        return Response(status: .noContent)
    }
}
