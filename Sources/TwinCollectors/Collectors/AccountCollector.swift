import TwinCore

/// Local accounts from the root's `/etc/passwd`, as `accounts` entities keyed by name, re-read only when the
/// file changes: "a new local user" is a state rule (`NewLocalUser`). Between runs (5 s apart, up to a
/// minute when the CPU budget relaxes the collector) inotify tells when the file was written or replaced,
/// and it is read at once, or at the next tick when the budget holds the refresh back; the count follows with
/// the next tick.
public final class AccountCollector: Collector {
    public let name = "accounts"
    private var last: (mtime: Int, nsec: Int, size: Int)?
    private var count = 0.0
    /// The count changed since it was last added to a tick's samples.
    private var countBehind = false
    private var watch: FileChangeWatch?
    private var watched = false
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let path = ctx.paths.root("/etc/passwd")
        if !watched { (watched, watch) = (true, FileChangeWatch(path)) }
        _ = watch?.changed() // this run reads the file if it changed
        if case .noData(let why) = read(&ctx, restate: ctx.restate) { return .noData(why) }
        addCount(&ctx)
        return .ok
    }

    private func addCount(_ ctx: inout CollectContext) {
        ctx.observation.add("hosttwin_local_accounts", .empty, count)
        countBehind = false
    }

    /// Reads the file when its time or size moved, or when `restate` asks (a commit failed), and hands the
    /// accounts over (`context.observation` then holds them).
    private func read(_ ctx: inout CollectContext, restate: Bool) -> CollectOutcome {
        let path = ctx.paths.root("/etc/passwd")
        guard let st = ctx.reader.status(path) else { return .noData("no \(path)") }
        let stamp = (Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec), Int(st.st_size))
        if let last, last == stamp, !restate { return .ok }
        guard let text = ctx.reader.read(path) else { return .noData("cannot read \(path)") }
        let accounts = parsePasswdEntries(text)
        last = stamp
        count = Double(accounts.count)
        countBehind = true
        ctx.observation.set(.accounts, accounts.map { a in
            Entity(kind: .accounts, key: a.name, attributes: [
                "name": .string(a.name), "uid": .int(Int64(a.uid)), "gid": .int(Int64(a.gid)), "gecos": .string(a.gecos),
                "home": .string(a.home), "shell": .string(a.shell),
                // Accounts a person can log in as: a shell that is not nologin/false.
                "login": .bool(!(a.shell.hasSuffix("/nologin") || a.shell.hasSuffix("/false") || a.shell.isEmpty)),
            ])
        })
        return .ok
    }
}

extension AccountCollector: ChangeDrivenCollector {
    /// Readable when a file of /etc was written or renamed (passwd among them).
    public var changeDescriptor: Int32? { watch?.descriptor }

    /// Between runs: the accounts read again when /etc/passwd changed; true when they were handed over.
    public func refreshChanged(_ ctx: inout CollectContext) -> Bool {
        guard watch?.changed() == true else { return false }
        _ = read(&ctx, restate: false)
        return ctx.observation.entities[.accounts] != nil
    }

    /// At a tick the collector is not due at: a change no refresh took goes with the tick, and the count of
    /// one read since the last tick.
    public func keepUp(_ ctx: inout CollectContext) {
        if watch?.changed() == true { _ = read(&ctx, restate: false) }
        if countBehind { addCount(&ctx) }
    }
}
