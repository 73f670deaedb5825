import TwinCore

/// Logged-in sessions from utmp (`/run/utmp`, or `/var/run/utmp`), as `users` entities. Between runs (5 s
/// apart, up to a minute when the CPU budget relaxes the collector) inotify tells when login or logout
/// wrote utmp, and the sessions are read at once, or at the next tick when the budget holds the refresh back;
/// their count follows with the next tick.
public final class UserCollector: Collector {
    public let name = "users"
    private var watch: FileChangeWatch?
    private var watched = false
    /// Sessions read between ticks whose count is not yet in a tick's samples.
    private var countBehind: Int?
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        _ = watch?.changed() // this run reads the file anyway
        countBehind = nil
        guard let count = read(&ctx) else { return .noData("no utmp file") }
        ctx.observation.add("hosttwin_user_sessions", .empty, Double(count))
        return .ok
    }

    /// Reads the first utmp file there is and hands its sessions over; their count, or nil when there is none.
    private func read(_ ctx: inout CollectContext) -> Int? {
        for p in ["/run/utmp", "/var/run/utmp"] {
            let path = ctx.paths.root(p)
            guard let sessions = ctx.reader.withBytes(path, { parseUtmp($0) }) else { continue }
            if !watched { (watched, watch) = (true, FileChangeWatch(path)) }
            ctx.observation.set(.users, sessions.map { s in
                Entity(kind: .users, key: "\(s.line)@\(s.loginTime)", attributes: [
                    "user": .string(s.user), "tty": .string(s.line), "host": .string(s.host), "pid": .int(Int64(s.pid)),
                    "login_time": .string(TwinTime.rfc3339(s.loginTime)),
                ])
            })
            return sessions.count
        }
        return nil
    }
}

extension UserCollector: ChangeDrivenCollector {
    /// Readable when a file of utmp's directory was written or renamed (utmp among them).
    public var changeDescriptor: Int32? { watch?.descriptor }

    /// Between runs: the sessions read again when utmp changed.
    public func refreshChanged(_ ctx: inout CollectContext) -> Bool {
        guard watch?.changed() == true, let count = read(&ctx) else { return false }
        countBehind = count
        return true
    }

    /// At a tick the collector is not due at: a change no refresh took goes with the tick, and the count of
    /// sessions read since the last tick.
    public func keepUp(_ ctx: inout CollectContext) {
        if watch?.changed() == true, let count = read(&ctx) { countBehind = count }
        if let count = countBehind {
            ctx.observation.add("hosttwin_user_sessions", .empty, Double(count))
            countBehind = nil
        }
    }
}
