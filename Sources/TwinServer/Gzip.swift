import CZlib
import HTTPTypes
import Hummingbird
import NIOCore

/// gzip content coding for responses (`Accept-Encoding: gzip`), as Prometheus does: JSON, the
/// exposition and the dashboard's files shrink five to ten times. Bodies under 1 KiB and streams
/// (no known length, such as the live stream) are sent as they are.
enum Gzip {
    static let minimumBytes = 1024

    /// Whether an `Accept-Encoding` value accepts gzip (a `q=0` refusal included).
    static func accepted(_ header: String?) -> Bool {
        guard let header else { return false }
        // Most clients that do not want gzip send no header or "identity": no parsing for them.
        let utf8 = header.utf8
        guard utf8.contains(UInt8(ascii: "*")) || header.asciiLowercased.contains("gzip") else { return false }
        return header.split(separator: ",").contains { part in
            let fields = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard fields.first == "gzip" || fields.first == "*" else { return false }
            return !fields.dropFirst().contains { $0.replacingOccurrences(of: " ", with: "").hasPrefix("q=0") && !$0.contains("q=0.") }
        }
    }

    /// `response` gzipped when it is worth it; otherwise unchanged.
    static func encode(_ response: Response) async -> Response {
        guard response.status == .ok, response.headers[.contentEncoding] == nil,
              let length = response.body.contentLength, length >= minimumBytes else { return response }
        let collector = Collector()
        var out = response
        do { try await response.body.write(collector) } catch { return response }
        guard let packed = deflate(collector.buffer.readableBytesView) else { return response }
        out.headers[.contentEncoding] = "gzip"
        out.headers[.vary] = "Accept-Encoding"
        out.headers[.contentLength] = String(packed.count)
        out.body = ResponseBody(byteBuffer: ByteBuffer(bytes: packed))
        return out
    }

    /// The gzip member of `input` at a fast level (level 1: most of the gain for a fraction of the CPU).
    static func deflate(_ input: ByteBufferView) -> [UInt8]? {
        var stream = z_stream()
        guard deflateInit2_(&stream, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
        defer { deflateEnd(&stream) }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 32)
        let rc: Int32 = input.withContiguousStorageIfAvailable { i -> Int32 in
            out.withUnsafeMutableBufferPointer { o -> Int32 in
                stream.next_in = UnsafeMutablePointer(mutating: i.baseAddress)
                stream.avail_in = UInt32(i.count)
                stream.next_out = o.baseAddress
                stream.avail_out = UInt32(o.count)
                return CZlib.deflate(&stream, Z_FINISH)
            }
        } ?? Z_STREAM_ERROR
        guard rc == Z_STREAM_END else { return nil }
        out.removeSubrange(Int(stream.total_out)...)
        return out
    }

    /// Collects a response body's bytes.
    final class Collector: ResponseBodyWriter {
        var buffer = ByteBuffer()
        func write(_ buffer: ByteBuffer) async throws { var b = buffer; self.buffer.writeBuffer(&b) }
        func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }
}
