import TwinCore

/// Installed packages from the dpkg status database, and the security updates apt's package lists offer for
/// them (`security_update`: the newer version of a list whose name says `security`, such as Debian's
/// bookworm-security or Ubuntu's jammy-security; plain and `.lz4` lists). Both are re-read only when their
/// files change (an install or an `apt update`).
public final class PackageCollector: Collector {
    public let name = "packages"
    private var lastStatus: (Int, Int)?
    private var lastLists: [String: (Int, Int, Int)] = [:]
    private var installed: [InstalledPackage] = []
    private var security: [String: String] = [:]
    private var count = 0.0
    private var updates = 0.0
    /// The most a decompressed list may hold.
    static let maxListBytes = 256 << 20
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let path = ctx.paths.root("/var/lib/dpkg/status")
        guard let st = ctx.reader.status(path) else { return .noData("no dpkg database (\(path))") }
        let mtime = (Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec))
        var changed = false
        if lastStatus == nil || lastStatus! != mtime {
            guard let text = ctx.reader.read(path) else { return .noData("cannot read \(path)") }
            installed = parseDpkgStatus(text)
            lastStatus = mtime
            changed = true
        }
        // The offers are kept for the installed packages only, so a changed set of packages reads them again.
        changed = readSecurityLists(ctx, again: changed) || changed
        if changed {
            count = Double(installed.count)
            updates = 0
            ctx.observation.set(.packages, installed.map { p in
                var a: [String: AttributeValue] = [
                    "name": .string(p.name), "version": .string(p.version), "architecture": .string(p.architecture), "manager": "dpkg",
                ]
                if let candidate = security[p.name + ":" + p.architecture], DebianVersion.compare(candidate, p.version) > 0 {
                    a["security_update"] = .string(candidate)
                    updates += 1
                }
                return Entity(kind: .packages, key: p.name + ":" + p.architecture, attributes: a)
            })
        }
        ctx.observation.add("hosttwin_packages_installed", .empty, count)
        ctx.observation.add("hosttwin_packages_security_updates", .empty, updates)
        return .ok
    }

    /// Reads the security lists again when any was added, removed or changed, or when asked `again`; true
    /// when it did. Only the offers for installed packages are kept (a security list offers thousands).
    private func readSecurityLists(_ ctx: CollectContext, again: Bool) -> Bool {
        let dir = ctx.paths.root("/var/lib/apt/lists")
        var now: [String: (Int, Int, Int)] = [:]
        for name in ctx.reader.list(dir) ?? [] where name.contains("security") && (name.hasSuffix("_Packages") || name.hasSuffix("_Packages.lz4")) {
            if let st = ctx.reader.status(dir + "/" + name) { now[name] = (Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec), Int(st.st_size)) }
        }
        guard again || now.count != lastLists.count || now.contains(where: { k, v in lastLists[k].map { $0 != v } ?? true }) else { return false }
        lastLists = now
        let wanted = Set(installed.map { $0.name + ":" + $0.architecture })
        var offered: [String: String] = [:]
        for name in now.keys.sorted() {
            let text: String? = name.hasSuffix(".lz4")
                ? ctx.reader.withBytes(dir + "/" + name) { raw in lz4FrameDecompress(UnsafeRawBufferPointer(raw), limit: Self.maxListBytes) }?.flatMap { String(decoding: $0, as: UTF8.self) }
                : ctx.reader.read(dir + "/" + name)
            for (key, version) in parsePackagesIndex(text ?? "", only: wanted) {
                if let old = offered[key], DebianVersion.compare(old, version) >= 0 { continue }
                offered[key] = version
            }
        }
        // Packages of architecture `all` are listed as such and installed as such: the keys match.
        security = offered
        return true
    }
}
