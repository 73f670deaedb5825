import TwinCore

/// `/proc/vmstat`, the fields node_exporter exports by default (`oom_kill`, `pgpg*`, `pswp*`, `pg*fault*`).
public final class VMStatCollector: Collector {
    public let name = "vmstat"
    private let names = LineKeyCache<String>()
    public init() {}

    static func isDefaultField(_ name: String) -> Bool {
        name.hasPrefix("oom_kill") || name.hasPrefix("pgpg") || name.hasPrefix("pswp")
            || (name.hasPrefix("pg") && name.contains("fault"))
    }

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let found: Void? = ctx.reader.withHeldBytes(ctx.paths.proc("vmstat")) { b in
            let s = ByteScanner(b)
            scanKeyValueLines(s) { index, key, v in
                guard let metric = names.value(index, key, s, {
                    let k = s.string(key)
                    return Self.isDefaultField(k) ? "node_vmstat_" + k : nil
                }) else { return }
                ctx.observation.add(metric, .empty, v, .untyped)
            }
        }
        return found == nil ? .noData("vmstat missing") : .ok
    }
}
