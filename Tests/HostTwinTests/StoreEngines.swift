import Foundation
import Testing
import TwinPostgres
@testable import TwinStorage

/// The engines the storage suites run on: the same tests, once per engine (issue 17). SQLite always;
/// PostgreSQL when HOSTTWIN_TEST_POSTGRES names a server (`.ci/run` starts one), where
/// ``PostgresDatabaseTests`` reports the skip otherwise.
enum StoreEngine: String, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    var testDescription: String { rawValue }

    /// The engines this machine can run.
    static let available: [StoreEngine] = PostgresDatabaseTests.url == nil ? [.sqlite] : [.sqlite, .postgres]
}

/// One test's store on one engine: a temporary data directory and, on PostgreSQL, a database of its own.
/// ``open(readOnly:)`` opens it as often as the test needs (a writer, a reader, a restart); ``remove()``
/// deletes both.
final class EngineStore: Sendable {
    let engine: StoreEngine
    let dir: String
    /// The test's own database (PostgreSQL only).
    let url: String?
    private let drop: @Sendable () -> Void

    init(_ engine: StoreEngine) throws {
        self.engine = engine
        dir = try temporaryDirectory()
        if engine == .postgres {
            let (url, drop) = try PostgresDatabaseTests.freshDatabase()
            self.url = url
            self.drop = drop
        } else {
            url = nil
            drop = {}
        }
    }

    func open(readOnly: Bool = false) throws -> TwinStore {
        try TwinStore.open(dataDir: dir, readOnly: readOnly, tablesIn: url.map { try PostgresDatabase(url: $0) })
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: dir)
        drop()
    }

    /// Stops `writers` (their sealers may still be writing) and then removes the store: dropping the
    /// database under a sealer's statement left that statement waiting for good.
    func remove(stopping writers: TwinWriter...) {
        for w in writers { try? w.finish(now: 0) }
        remove()
    }

    /// The first column of the first row of `sql` in the store's tables.
    static func integer(_ store: TwinStore, _ sql: String, _ arguments: [any SQLValueConvertible] = []) throws -> Int64? {
        try store.database.read { try $0.value(sql, arguments)?.int64 }
    }
}
