import TwinCore

/// Local accounts from the root's `/etc/passwd`, as `accounts` entities keyed by name, re-read only when the
/// file changes: "a new local user" is a state rule (`NewLocalUser`).
public final class AccountCollector: Collector {
    public let name = "accounts"
    private var last: (mtime: Int, nsec: Int, size: Int)?
    private var count = 0.0
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let path = ctx.paths.root("/etc/passwd")
        guard let st = ctx.reader.status(path) else { return .noData("no \(path)") }
        let stamp = (Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec), Int(st.st_size))
        if let last, last == stamp, !ctx.restate { // a restated run hands them over again (a commit failed)
            ctx.observation.add("hosttwin_local_accounts", .empty, count)
            return .ok
        }
        guard let text = ctx.reader.read(path) else { return .noData("cannot read \(path)") }
        let accounts = parsePasswdEntries(text)
        last = stamp
        count = Double(accounts.count)
        ctx.observation.set(.accounts, accounts.map { a in
            Entity(kind: .accounts, key: a.name, attributes: [
                "name": .string(a.name), "uid": .int(Int64(a.uid)), "gid": .int(Int64(a.gid)), "gecos": .string(a.gecos),
                "home": .string(a.home), "shell": .string(a.shell),
                // Accounts a person can log in as: a shell that is not nologin/false.
                "login": .bool(!(a.shell.hasSuffix("/nologin") || a.shell.hasSuffix("/false") || a.shell.isEmpty)),
            ])
        })
        ctx.observation.add("hosttwin_local_accounts", .empty, count)
        return .ok
    }
}
