import Glibc
import TwinCore

/// node_exporter's textfile collector: samples that other programs write as `*.prom` files (Prometheus
/// text format, no timestamps) into a directory — cron jobs, backup scripts — with each file's
/// modification time (`node_textfile_mtime_seconds`) and `node_textfile_scrape_error` (1 when a file
/// could not be read or parsed; its samples are then left out). The directory is Debian's
/// node_exporter default unless configured; that default may be absent without error.
public final class TextfileCollector: Collector {
    public let name = "textfile"
    /// Debian's node_exporter directory, the default.
    public static let defaultDirectory = "/var/lib/prometheus/node-exporter"
    /// Bounds that keep a runaway writer from flooding the twin.
    static let maxFiles = 256
    static let maxSamples = 10_000
    static let maxFileBytes = 4 << 20
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let configured = ctx.config.textfileDirectory
        let dir = ctx.paths.root(configured ?? Self.defaultDirectory)
        guard let names = ctx.reader.list(dir) else {
            ctx.observation.add("node_textfile_scrape_error", .empty, configured == nil ? 0 : 1)
            return configured == nil ? .noData("no \(dir)") : .noData("cannot list \(dir)")
        }
        var failed = false
        var budget = Self.maxSamples
        for file in names.filter({ $0.hasSuffix(".prom") }).sorted().prefix(Self.maxFiles) {
            let path = dir + "/" + file
            guard let st = ctx.reader.status(path), st.st_mode & S_IFMT == S_IFREG, Int(st.st_size) <= Self.maxFileBytes,
                  let parsed = ctx.reader.withBytes(path, { Self.parse(UnsafeRawBufferPointer($0), budget: budget) }),
                  let samples = parsed else {
                failed = true
                continue
            }
            budget -= samples.samples.count
            for (key, value) in samples.samples { ctx.observation.add(key.metric, key.labels, value, samples.types[key.metric] ?? .untyped) }
            ctx.observation.add("node_textfile_mtime_seconds", Labels(["file": path]), Double(st.st_mtim.tv_sec))
        }
        ctx.observation.add("node_textfile_scrape_error", .empty, failed ? 1 : 0)
        return .ok
    }

    /// The samples of one file, or nil when any line is malformed, carries a timestamp, or the budget runs out.
    static func parse(_ bytes: UnsafeRawBufferPointer, budget: Int) -> (samples: [(SeriesKey, Double)], types: [String: MetricType])? {
        var p = ExpositionParser(bytes)
        var samples: [(SeriesKey, Double)] = []
        var types: [String: MetricType] = [:]
        do {
            while let line = try p.next() {
                switch line {
                case .type(let name, let type): types[name] = type
                case .help: break
                case .sample(let range, let value, let time):
                    guard time == nil, samples.count < budget else { return nil }
                    samples.append((try SeriesKey.parse(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)), value))
                }
            }
        } catch { return nil }
        return (samples, types)
    }
}
