import TwinCore

/// Small kernel-wide figures: open file handles (`/proc/sys/fs/file-nr`) and entropy
/// (`/proc/sys/kernel/random/`), as node_exporter's filefd and entropy families.
public final class KernelCollector: Collector {
    public let name = "kernel"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        var any = false
        if let t = ctx.reader.read(ctx.paths.proc("sys/fs/file-nr")) {
            let f = t.fields
            if f.count >= 3, let alloc = Double(f[0]), let max = Double(f[2].trimmingNewline) {
                ctx.observation.add("node_filefd_allocated", .empty, alloc)
                ctx.observation.add("node_filefd_maximum", .empty, max)
                any = true
            }
        }
        if let a = ctx.reader.read(ctx.paths.proc("sys/kernel/random/entropy_avail")).flatMap({ Double($0.trimmingSuffixNewlines) }) {
            ctx.observation.add("node_entropy_available_bits", .empty, a)
            any = true
        }
        if let p = ctx.reader.read(ctx.paths.proc("sys/kernel/random/poolsize")).flatMap({ Double($0.trimmingSuffixNewlines) }) {
            ctx.observation.add("node_entropy_pool_size_bits", .empty, p)
        }
        return any ? .ok : .noData("no /proc/sys/fs/file-nr")
    }
}
