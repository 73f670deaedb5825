import Glibc
import TwinCore

/// Backup freshness: for each configured path (file or directory, walked recursively), the newest
/// modification time, total size and file count, so "the backup is older than 26 h" is a simple rule.
public final class BackupCollector: Collector {
    public let name = "backup"
    /// A bound on the walk so a mistaken path (`/`) cannot stall the collector.
    static let maxEntries = 200_000
    public init() {}

    struct Summary { var newest: Double = 0; var size: Double = 0; var files: Double = 0; var truncated = false }

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let paths = ctx.config.backupPaths
        if paths.isEmpty { return .noData("no backup paths configured") }
        var entities: [Entity] = []
        for path in paths {
            let labels = Labels(["path": path])
            var s = Summary()
            var budget = Self.maxEntries
            let exists = walk(ctx.paths.root(path), ctx.reader, &s, &budget)
            ctx.observation.add("hosttwin_backup_present", labels, exists ? 1 : 0)
            guard exists else {
                entities.append(Entity(kind: .backups, key: path, attributes: ["path": .string(path), "present": false]))
                continue
            }
            ctx.observation.add("hosttwin_backup_newest_mtime_seconds", labels, s.newest)
            ctx.observation.add("hosttwin_backup_size_bytes", labels, s.size)
            ctx.observation.add("hosttwin_backup_files", labels, s.files)
            entities.append(Entity(kind: .backups, key: path, attributes: [
                "path": .string(path), "present": true, "newest_mtime": .string(TwinTime.rfc3339(Int64(saturating: s.newest * 1000))),
                "truncated_walk": .bool(s.truncated),
            ]))
        }
        ctx.observation.set(.backups, entities)
        return .ok
    }

    private func walk(_ path: String, _ reader: FileReader, _ s: inout Summary, _ budget: inout Int) -> Bool {
        var st = stat()
        guard lstat(path, &st) == 0 else { return false }
        budget -= 1
        if budget < 0 { s.truncated = true; return true }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in reader.list(path) ?? [] { _ = walk(path + "/" + name, reader, &s, &budget) }
        } else if (st.st_mode & S_IFMT) == S_IFREG {
            s.files += 1
            s.size += Double(st.st_size)
            let mtime = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
            if mtime > s.newest { s.newest = mtime }
        }
        return true
    }
}
