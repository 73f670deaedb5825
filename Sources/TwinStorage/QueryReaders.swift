import GRDB
import Synchronization

/// Read-only connections for the query path. GRDB's pool hands each read a reader through a barrier
/// queue, a semaphore, a dispatch group and a key path built at run time: a sixth of a small range
/// query's time (BENCHMARKS.md, issue 15). These connections wait in a list behind one lock; a read
/// takes one (opening it when none is idle), runs in its own transaction, and puts it back.
final class QueryReaders: Sendable {
    private let path: String
    private let configuration: Configuration
    private let idle = Mutex<[DatabaseQueue]>([])
    /// Idle connections kept; more may be open while reads run concurrently.
    static let keep = 8

    init(path: String, configuration: Configuration) {
        self.path = path
        var c = configuration
        c.readonly = true
        self.configuration = c
    }

    /// Closes the idle connections, freeing what each caches (up to 1 MiB of pages, prepared statements,
    /// the schema); the next read opens one again (under a millisecond).
    func closeIdle() {
        let closing = idle.withLock { queues in defer { queues.removeAll() }; return queues }
        _ = closing // closed here, outside the lock, as the last references go
    }

    /// Runs `body` in a read transaction of one of the connections. The transaction's statements are
    /// prepared once per connection (GRDB's `read` parses `BEGIN` and `COMMIT` on every call: a tenth of a
    /// one-series query's time).
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        let queue = try idle.withLock { $0.popLast() } ?? DatabaseQueue(path: path, configuration: configuration)
        defer { idle.withLock { if $0.count < Self.keep { $0.append(queue) } } }
        return try queue.unsafeRead { db in
            try db.cachedStatement(sql: "BEGIN DEFERRED TRANSACTION").execute()
            let value: T
            do { value = try body(db) } catch {
                if !db.isInsideTransaction { throw error }
                try? db.cachedStatement(sql: "ROLLBACK TRANSACTION").execute()
                throw error
            }
            try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
            return value
        }
    }
}
