import TwinCore

/// Installed packages from the dpkg status database, re-read only when the file changes.
public final class PackageCollector: Collector {
    public let name = "packages"
    private var lastMtime: (Int, Int)?
    private var count = 0.0
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let path = ctx.paths.root("/var/lib/dpkg/status")
        guard let st = ctx.reader.status(path) else { return .noData("no dpkg database (\(path))") }
        let mtime = (Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec))
        if let lastMtime, lastMtime == mtime {
            ctx.observation.add("hosttwin_packages_installed", .empty, count)
            return .ok
        }
        guard let text = ctx.reader.read(path) else { return .noData("cannot read \(path)") }
        let pkgs = parseDpkgStatus(text)
        lastMtime = mtime
        count = Double(pkgs.count)
        ctx.observation.set(.packages, pkgs.map {
            Entity(kind: .packages, key: $0.name + ":" + $0.architecture, attributes: [
                "name": .string($0.name), "version": .string($0.version), "architecture": .string($0.architecture),
                "manager": "dpkg",
            ])
        })
        ctx.observation.add("hosttwin_packages_installed", .empty, count)
        return .ok
    }
}
