import SwiftProtobuf
import TwinCore

/// Prometheus remote_write 1.0 bodies: a `WriteRequest` (protobuf, `remote.proto` beside this file)
/// compressed as one snappy block. Encodes what HostTwin sends and decodes, with limits, what it accepts.
public enum RemoteWriteCodec {
    /// One series of a request: its labels as sent (without `__name__`), and its samples oldest first.
    public struct Series: Sendable, Equatable {
        public var metric: String
        public var labels: [Label]
        public var t: [Int64]
        public var v: [Double]

        public init(metric: String, labels: [Label], t: [Int64], v: [Double]) {
            self.metric = metric
            self.labels = labels
            self.t = t
            self.v = v
        }
    }

    /// A decoded request: its series and the metric types its metadata names (by family).
    public struct Request: Sendable {
        public var series: [Series] = []
        public var types: [String: MetricType] = [:]
        /// Series refused (an invalid or missing name, a repeated label), with why for the first ten.
        public var refused = 0
        public var refusals: [String] = []
        /// Prometheus' staleness markers dropped (a marker says a series ended: absence here, as in
        /// Prometheus' own queries).
        public var staleMarkers = 0
    }

    /// The headers a remote_write 1.0 request carries besides its body.
    public static let headers: [(String, String)] = [
        ("Content-Encoding", "snappy"),
        ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ("User-Agent", "hosttwin"),
    ]
    public static let contentType = "application/x-protobuf"
    /// The largest uncompressed request accepted (Prometheus sends a few hundred KiB).
    public static let maxUncompressedBytes = 64 << 20
    /// The bit pattern Prometheus writes as a series' last sample when it goes away.
    public static let staleNaN: UInt64 = 0x7ff0_0000_0000_0002

    /// `series` (and `types` as metadata) as a compressed request body. Labels are sent sorted by name with
    /// `__name__` among them, as the protocol asks.
    public static func encode(_ series: [Series], types: [String: MetricType] = [:]) -> [UInt8] {
        var request = Prometheus_WriteRequest()
        request.timeseries.reserveCapacity(series.count)
        for s in series {
            var ts = Prometheus_TimeSeries()
            var labels = s.labels.map { l in Prometheus_Label.with { $0.name = l.name; $0.value = l.value } }
            labels.append(Prometheus_Label.with { $0.name = "__name__"; $0.value = s.metric })
            labels.sort { $0.name < $1.name }
            ts.labels = labels
            ts.samples.reserveCapacity(s.t.count)
            for (t, v) in zip(s.t, s.v) { ts.samples.append(Prometheus_Sample.with { $0.timestamp = t; $0.value = v }) }
            request.timeseries.append(ts)
        }
        for (family, type) in types.sorted(by: { $0.key < $1.key }) {
            request.metadata.append(Prometheus_MetricMetadata.with {
                $0.metricFamilyName = family
                $0.type = type == .counter ? .counter : type == .gauge ? .gauge : .unknown
            })
        }
        // Serializing a message of fields set here cannot fail.
        let bytes: [UInt8] = (try? request.serializedBytes()) ?? []
        return Snappy.compress(bytes)
    }

    /// A compressed request body decoded; throws ``RemoteWriteError`` for a body that is not snappy or not
    /// a `WriteRequest`. Invalid series are left out and counted in ``Request/refused``.
    public static func decode(_ body: [UInt8]) throws(RemoteWriteError) -> Request {
        let raw: [UInt8]
        do { raw = try Snappy.uncompress(body, limit: maxUncompressedBytes) } catch { throw RemoteWriteError("body is not snappy-compressed: \(error)") }
        let message: Prometheus_WriteRequest
        do {
            var options = BinaryDecodingOptions()
            options.messageDepthLimit = 8
            options.discardUnknownFields = true
            message = try Prometheus_WriteRequest(serializedBytes: raw, options: options)
        } catch { throw RemoteWriteError("body is not a remote_write WriteRequest: \(error)") }
        var out = Request()
        for m in message.metadata where !m.metricFamilyName.isEmpty {
            switch m.type {
            case .counter: out.types[m.metricFamilyName] = .counter
            case .gauge: out.types[m.metricFamilyName] = .gauge
            default: break
            }
        }
        out.series.reserveCapacity(message.timeseries.count)
        for ts in message.timeseries {
            var metric: String?
            var labels: [Label] = []
            labels.reserveCapacity(ts.labels.count)
            var problem: String?
            var names = Set<String>()
            for l in ts.labels {
                guard names.insert(l.name).inserted else { problem = "label \(l.name) repeated"; break }
                if l.name == "__name__" {
                    guard isMetricName(l.value) else { problem = "invalid metric name \"\(l.value.prefix(80))\""; break }
                    metric = l.value
                } else {
                    guard isLabelName(l.name) else { problem = "invalid label name \"\(l.name.prefix(80))\""; break }
                    if !l.value.isEmpty { labels.append(Label(l.name, l.value)) } // an empty value is the label's absence
                }
            }
            if problem == nil, metric == nil { problem = "no __name__ label" }
            if let problem {
                out.refused += 1
                if out.refusals.count < 10 { out.refusals.append(problem) }
                continue
            }
            var t: [Int64] = [], v: [Double] = []
            t.reserveCapacity(ts.samples.count)
            v.reserveCapacity(ts.samples.count)
            for s in ts.samples {
                if s.value.bitPattern == staleNaN { out.staleMarkers += 1; continue }
                t.append(s.timestamp)
                v.append(s.value)
            }
            labels.sort { $0.name < $1.name }
            out.series.append(Series(metric: metric!, labels: labels, t: t, v: v))
        }
        return out
    }

    static func isMetricName(_ s: String) -> Bool {
        var first = true
        for c in s.utf8 {
            let ok = (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c == 95 || c == 58 || (!first && c >= 48 && c <= 57)
            guard ok else { return false }
            first = false
        }
        return !first
    }

    static func isLabelName(_ s: String) -> Bool {
        var first = true
        for c in s.utf8 {
            let ok = (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c == 95 || (!first && c >= 48 && c <= 57)
            guard ok else { return false }
            first = false
        }
        return !first
    }
}

/// A remote_write body refused as a whole.
public struct RemoteWriteError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
