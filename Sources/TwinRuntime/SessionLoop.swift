import Foundation
import Logging
import ServiceLifecycle
import TwinServer

/// Why a sync session ends early without failing: the other side asked to resume elsewhere.
struct Resume: Error {
    var from: UInt64
    var reason: String
}

/// Runs `session` again and again until the service shuts down: after a session that ends or asks to
/// resume, at once; after a failure, with a back-off doubling from `backoff` to `maxBackoff` (from `backoff`
/// again when the failed session had run for 10 s). A failure is logged once, then every tenth attempt
/// while it lasts (the stores keep everything meanwhile). On graceful shutdown the running session is
/// cancelled, after `drain` returns when one is given (it waits, bounded, for the session to deliver what
/// it has).
func runSessions(_ what: String, backoff initial: Duration, maxBackoff: Duration, logger: Logger,
                 drain: (@Sendable () async -> Void)? = nil, session: @escaping @Sendable () async throws -> Void) async {
    var backoff = initial
    var failures = 0
    while !Task.isCancelled && !Task.isShuttingDownGracefully {
        let started = ContinuousClock.now
        do {
            if let drain {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await session() }
                    group.addTask { try await gracefulShutdown(); await drain(); throw CancellationError() }
                    try await group.next()
                    group.cancelAll()
                }
            } else {
                try await cancelWhenGracefulShutdown { try await session() }
            }
            backoff = initial
            failures = 0
        } catch let resume as Resume {
            logger.info("\(what): asked to resume from tick \(resume.from) (\(resume.reason))")
            try? await Task.sleep(for: .milliseconds(100))
        } catch {
            if Task.isCancelled || Task.isShuttingDownGracefully { break }
            // A session that worked for a while before it broke (the other side restarted) starts the
            // back-off again: followers' sessions only ever end by breaking.
            if ContinuousClock.now - started > .seconds(10) { backoff = initial; failures = 0 }
            failures += 1
            let message: Logger.Message = "\(what) interrupted: \(error); retrying in \(backoff) (attempt \(failures))"
            if failures == 1 || failures % 10 == 0 { logger.warning(message) } else { logger.debug(message) }
            // ±20 %, so the agents of a hub that came back do not all reconnect in the same instant.
            let wait = backoff * Double.random(in: 0.8...1.2)
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
            backoff = min(backoff * 2, maxBackoff)
        }
    }
}

/// Every minute while the session lasts, what the hub at `remote` resolves of the fleet's addresses
/// (`GET /api/v1/sync/addresses`) goes into `book`; a failed read keeps what was learnt.
func learnAddresses(from remote: RemoteTwin, into book: FleetAddressBook) async {
    while !Task.isCancelled {
        if let r = try? await Task.detached(operation: { try remote.get("/api/v1/sync/addresses") }).value, r.status == 200,
           let map = try? JSONDecoder().decode([String: String].self, from: Data(r.body)) {
            book.learn(upstream: map)
        }
        try? await Task.sleep(for: .seconds(60))
    }
}
