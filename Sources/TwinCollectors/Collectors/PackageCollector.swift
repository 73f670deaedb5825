import TwinCore

/// Installed packages from the dpkg status database, and the security updates apt's package lists offer for
/// them (`security_update`: the newer version of a list whose name says `security`, such as Debian's
/// bookworm-security or Ubuntu's jammy-security; plain and `.lz4` lists). Both are re-read only when their
/// files change (an install or an `apt update`). Between runs (a minute apart by default) inotify tells when
/// dpkg has written its status file, and the packages are read at once (change-driven capture); their counts
/// follow with the next tick.
public final class PackageCollector: Collector {
    public let name = "packages"
    private var lastStatus: (Int, Int)?
    private var lastLists: [String: (Int, Int, Int)] = [:]
    private var installed: [InstalledPackage] = []
    private var security: [String: String] = [:]
    private var count = 0.0
    private var updates = 0.0
    /// The counts changed since they were last added to a tick's samples.
    private var countsBehind = false
    /// dpkg's status file, which dpkg replaces by renaming `status-new` over it; nil before the first run and
    /// where inotify is unavailable.
    private var watch: FileChangeWatch?
    private var watched = false
    /// The most a decompressed list may hold.
    static let maxListBytes = 256 << 20
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let path = ctx.paths.root("/var/lib/dpkg/status")
        if !watched { (watched, watch) = (true, FileChangeWatch(path)) }
        _ = watch?.changed() // this run reads the file if it changed
        if case .noData(let why) = readStatus(&ctx, restate: ctx.restate) { return .noData(why) }
        addCounts(&ctx)
        return .ok
    }

    private func addCounts(_ ctx: inout CollectContext) {
        ctx.observation.add("hosttwin_packages_installed", .empty, count)
        ctx.observation.add("hosttwin_packages_security_updates", .empty, updates)
        countsBehind = false
    }

    /// Reads the status file if its modification time moved (and then the security lists again), and hands
    /// the packages over when they changed or `restate` asks for them (`context.observation` then holds them).
    private func readStatus(_ ctx: inout CollectContext, restate: Bool = false) -> CollectOutcome {
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
        guard changed || restate else { return .ok }
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
        countsBehind = true
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

extension PackageCollector: ChangeDrivenCollector {
    /// Readable when dpkg wrote or renamed a file of its directory (its status file among them).
    public var changeDescriptor: Int32? { watch?.descriptor }

    /// Between runs: the packages read again when the status file is among what changed.
    public func refreshChanged(_ ctx: inout CollectContext) -> Bool {
        guard watch?.changed() == true else { return false }
        _ = readStatus(&ctx)
        return ctx.observation.entities[.packages] != nil
    }

    /// At a tick the collector is not due at: a change the CPU budget held back between ticks (or one that
    /// came while change-driven capture is off) is read now and handed over with the tick, not at the next
    /// run a minute later, with the counts of a change read between ticks. One read of an empty inotify
    /// queue a tick otherwise.
    public func keepUp(_ ctx: inout CollectContext) {
        if watch?.changed() == true { _ = readStatus(&ctx) }
        if countsBehind { addCounts(&ctx) }
    }
}
