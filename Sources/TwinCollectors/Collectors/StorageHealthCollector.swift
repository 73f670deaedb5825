import TwinCore

/// File system error counters the kernel keeps: `/sys/fs/ext4/<dev>/errors_count` (and first/last error
/// times), exported as `hosttwin_filesystem_errors_total{device,fstype}`. Read-only remounts are seen by the
/// filesystem collector.
public final class StorageHealthCollector: Collector {
    public let name = "storagehealth"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        var any = false
        for fstype in ["ext4", "f2fs"] {
            let dir = ctx.paths.sys("fs/\(fstype)")
            guard let devices = ctx.reader.list(dir) else { continue }
            for dev in devices.sorted() {
                guard let text = ctx.reader.read("\(dir)/\(dev)/errors_count"),
                      let n = Double(text.trimmingSuffixNewlines) else { continue }
                any = true
                let labels = Labels(["device": dev, "fstype": fstype])
                ctx.observation.counter("hosttwin_filesystem_errors_total", labels, n)
                if let t = ctx.reader.read("\(dir)/\(dev)/last_error_time").flatMap({ Double($0.trimmingSuffixNewlines) }) {
                    ctx.observation.add("hosttwin_filesystem_last_error_time_seconds", labels, t)
                }
            }
        }
        return any ? .ok : .noData("no ext4/f2fs error counters in /sys/fs")
    }
}
