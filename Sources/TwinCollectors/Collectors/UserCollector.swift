import TwinCore

/// Logged-in sessions from utmp (`/run/utmp`, or `/var/run/utmp`), as `users` entities.
public final class UserCollector: Collector {
    public let name = "users"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        var sessions: [LoginSession]?
        for p in ["/run/utmp", "/var/run/utmp"] {
            if let s = ctx.reader.withBytes(ctx.paths.root(p), { parseUtmp($0) }) { sessions = s; break }
        }
        guard let sessions else { return .noData("no utmp file") }
        ctx.observation.set(.users, sessions.map { s in
            Entity(kind: .users, key: "\(s.line)@\(s.loginTime)", attributes: [
                "user": .string(s.user), "tty": .string(s.line), "host": .string(s.host), "pid": .int(Int64(s.pid)),
                "login_time": .string(TwinTime.rfc3339(s.loginTime)),
            ])
        })
        ctx.observation.add("hosttwin_user_sessions", .empty, Double(sessions.count))
        return .ok
    }
}
