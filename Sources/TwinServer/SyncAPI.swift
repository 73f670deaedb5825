import Foundation
import Hummingbird
import NIOCore
import ServiceLifecycle
import TwinSecurity
import TwinStorage

/// Decompresses a push session sent with `Content-Encoding: zstd` (TwinRuntime provides TwinSync's).
public protocol SyncStreamDecoder: AnyObject {
    func decompress(_ input: [UInt8]) throws -> [UInt8]
}

/// What a hub does with batches agents push (TwinRuntime's `HubReceiver` applies them to the hub's store).
public protocol SyncReceiver: Sendable {
    /// Where `host`'s history stands at this hub; nil when the hub has nothing of it.
    func cursor(host: String) throws -> SyncCursor?
    /// The handshake: refuses a protocol version the hub does not speak (with the ones it does) and
    /// records the agent's clock offset; `agentClock` is the agent's time (ms) when it asked. A relay's
    /// handshake names no host.
    func hello(host: String?, version: Int, agentClock: Int64?, latest: UInt64?) throws
    /// Applies one batch pushed for `host` (nil: a relay's session, the host the batch names; `datacenter`:
    /// the relay's, recorded as the host's); never throws: a refusal is an acknowledgement too.
    func apply(_ batch: [UInt8], host: String?, datacenter: String?) async -> SyncAck
    /// A live-lane batch (one tick standing alone, pushed while the in-order stream catches up): its samples
    /// are queryable at once from memory, nothing is stored (docs/format/sync.md "Two lanes"). Returns the
    /// samples kept; throws for a damaged batch or one naming another host than an agent's `host`. A relay's
    /// `datacenter` is recorded for the host before its samples show (a confined token's scope needs it).
    func preview(_ batch: [UInt8], host: String?, datacenter: String?) async throws -> Int
    /// How long a catch-up batch (more than one tick) must wait for the hub-wide catch-up budget, and its
    /// host; nil when it need not (live batches never wait). Reserves the budget.
    func catchUpWait(_ batch: [UInt8]) -> (wait: Duration, host: String)?
    /// A decoder for a session compressed with `encoding` (`zstd`); nil when not supported.
    func streamDecoder(for encoding: String) -> (any SyncStreamDecoder)?
    /// Which fleet host uses which address, as this hub knows (its hosts', and its upstream's).
    func fleetAddresses() -> [String: String]
    /// Every host's cursor (a relay's handshake).
    func cursors() throws -> [SyncCursor]
    /// A session reading the hub's outbox after `after` for a follower that holds `held`; with `policy`,
    /// the follower's token's data policy, each batch's state changes as that policy lets them leave.
    func follow(held: [SyncCursor], after: Int64, policy: DataPolicy?) throws -> any SyncOutboxSession
    /// A compressor for a follower's session (`zstd`).
    func streamEncoder() -> any SyncStreamEncoder
    /// Reconciliation: digests of `host`'s `ranges` of ticks and of its entity state at `stateAt`, as the
    /// hub holds them. Throws ``SyncConflict`` when the hub holds another epoch or not all of a range.
    func reconcile(host: String, epoch: UInt64, ranges: [SyncRange], stateAt: Int64?) throws -> SyncReconciliation
    /// Reconciliation found ticks after `through` that differ: the hub takes `host`'s cursor back there so
    /// the agent sends them again (filling samples the hub lacks; versions it holds are not opened twice).
    func rewind(host: String, epoch: UInt64, to through: UInt64) throws -> SyncCursor
}

/// A range of a host's ticks (sequence numbers) and the times of its first and last tick.
public struct SyncRange: Sendable, Codable, Equatable {
    public var first: UInt64
    public var last: UInt64
    public var from: Int64
    public var to: Int64

    public init(first: UInt64, last: UInt64, from: Int64, to: Int64) {
        self.first = first
        self.last = last
        self.from = from
        self.to = to
    }

    /// The form `FIRST-LAST@FROM-TO` (ticks, then times in ms).
    public var form: String { "\(first)-\(last)@\(from)-\(to)" }

    public init?(form: String) {
        let parts = form.split(separator: "@")
        guard parts.count == 2 else { return nil }
        let ticks = parts[0].split(separator: "-"), times = parts[1].split(separator: "-", maxSplits: 1)
        guard ticks.count == 2, times.count == 2, let a = UInt64(ticks[0]), let b = UInt64(ticks[1]), a >= 1, a <= b,
              let from = Int64(times[0]), let to = Int64(times[1]), from <= to else { return nil }
        self.init(first: a, last: b, from: from, to: to)
    }
}

/// A hub's side of a reconciliation: a digest per range asked about, and of the state.
public struct SyncReconciliation: Sendable, Codable, Equatable {
    public var ranges: [TwinDigest]
    public var state: TwinDigest?

    public init(ranges: [TwinDigest], state: TwinDigest?) {
        self.ranges = ranges
        self.state = state
    }
}

/// The hub holds another epoch of the host, or not all of a range asked about (HTTP 409).
public struct SyncConflict: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Compresses a follow session's response (TwinRuntime provides TwinSync's zstd stream).
public protocol SyncStreamEncoder: AnyObject {
    func compress(_ input: [UInt8]) throws -> [UInt8]
}

/// One follower's read of a hub's outbox.
public protocol SyncOutboxSession: AnyObject {
    /// The next batches with their outbox ids, in order; empty at the end of what the hub holds now.
    func next() async throws -> [(id: Int64, batch: [UInt8])]
}

/// A host's cursor at a hub: its store's epoch (hex) and the last tick applied.
public struct SyncCursor: Sendable, Codable, Equatable {
    public var host: String
    public var epoch: String
    public var appliedThrough: UInt64
    /// True when another hub sharing this hub's database writes the host: the cursor is that hub's, and
    /// pushes here are refused (`elsewhere`) until it stops.
    public var standby: Bool?

    public init(host: String, epoch: String, appliedThrough: UInt64, standby: Bool? = nil) {
        self.host = host
        self.epoch = epoch
        self.appliedThrough = appliedThrough
        self.standby = standby
    }

    enum CodingKeys: String, CodingKey { case host, epoch, appliedThrough = "applied_through", standby }
}

/// The hub's answer to pushed batches, one JSON line each in the push response: applied ones coalesced
/// (`first`…`last`), anything else for the one batch it is about.
public struct SyncAck: Sendable, Codable, Equatable {
    /// `applied`, `duplicate` (held already), `gap` (send from `resume_at`), `need_base` (send the range
    /// standing alone from `resume_at`), `behind` (a catch-up batch waits `wait_ms` for the hub's budget:
    /// the sender's newest ticks should take the live lane meanwhile), `elsewhere` (another hub sharing the
    /// database writes the host: try again in `wait_ms`) or `refused` (damaged or not allowed; `message`
    /// says why).
    public var outcome: String
    /// The host it is about (in a relay's session, which carries many hosts).
    public var host: String?
    public var first: UInt64?
    public var last: UInt64?
    public var resumeAt: UInt64?
    public var epoch: String?
    public var samples: Int?
    public var message: String?
    /// `behind`: how long the batch waits for the hub's catch-up budget (ms).
    public var waitMs: Int?

    /// ``waitMs`` as a sender acts on it: within 0…60,000 ms, whatever the hub wrote.
    public var boundedWaitMs: Int { min(max(waitMs ?? 0, 0), 60_000) }

    public init(outcome: String, host: String? = nil, first: UInt64? = nil, last: UInt64? = nil, resumeAt: UInt64? = nil, epoch: String? = nil, samples: Int? = nil, message: String? = nil, waitMs: Int? = nil) {
        self.waitMs = waitMs
        self.outcome = outcome
        self.host = host
        self.first = first
        self.last = last
        self.resumeAt = resumeAt
        self.epoch = epoch
        self.samples = samples
        self.message = message
    }

    enum CodingKeys: String, CodingKey { case outcome, host, first, last, resumeAt = "resume_at", epoch, samples, message, waitMs = "wait_ms" }
}

extension TwinAPI {
    /// How often applied frames are acknowledged at most.
    static let syncAckInterval: Duration = .seconds(5)

    /// The largest frame a push may carry (a catch-up batch of a few thousand ticks is a few MB).
    static let maxSyncFrame = 64 << 20

    /// The host a caller may push for: an agent token's own host, any host for an admin or a relay (nil:
    /// a relay's session, whose batches name their hosts). Refusals are 403s, which the audit log records
    /// with the token.
    func syncHost(_ p: Params) throws -> String? {
        guard sync != nil else { throw APIError.unavailable("this server does not accept pushes (start it with `hosttwin serve` on a data directory no `run` writes, without --follow)") }
        guard let host = p["host"], !host.isEmpty else {
            if p.identity.role == .relay || p.identity.role == .admin { return nil }
            throw APIError.badData("the host parameter is required")
        }
        if p.identity.role == .agent, p.identity.host != host {
            throw APIError(type: "forbidden", message: "this agent token is bound to \(p.identity.host.map { "host \($0)" } ?? "no host"), not \(host); an admin can re-bind it", status: .forbidden)
        }
        return host
    }

    /// `GET /api/v1/sync/cursor?host=H[&version=V&clock=MS]`: where the hub's copy of H stands (the
    /// handshake's resume point); with the agent's protocol version and clock, also the version check
    /// and the clock offset.
    func syncCursor(_ p: Params) throws -> Response {
        guard let host = try syncHost(p) else { throw APIError.badData("the host parameter is required (a relay asks /api/v1/sync/cursors)") }
        if let v = p["version"] {
            guard let version = Int(v) else { throw APIError.badData("version \(v): expected a number") }
            try sync!.hello(host: host, version: version, agentClock: p["clock"].flatMap { Int64($0) }, latest: p["latest"].flatMap { UInt64($0) })
        }
        let cursor = try sync!.cursor(host: host) ?? SyncCursor(host: host, epoch: "0", appliedThrough: 0)
        return Self.json(bytes: Array(try JSONEncoder.sorted.encode(cursor)))
    }

    /// `POST /api/v1/sync/reconcile` (form: `host`, `epoch` (hex), `range=FIRST-LAST@FROM-TO` up to 48,
    /// `state_at=MS`): the hub's digests of those ranges of the host's ticks and of its state then.
    func syncReconcile(_ p: Params) throws -> Response {
        guard let host = try syncHost(p) else { throw APIError.badData("the host parameter is required") }
        let epoch = try Self.syncEpoch(p)
        let forms = p.all("range")
        guard forms.count <= 48 else { throw APIError.badData("at most 48 ranges per request (got \(forms.count))") }
        let ranges = try forms.map { f in
            guard let r = SyncRange(form: f) else { throw APIError.badData("range \(f): expected FIRST-LAST@FROM-TO (ticks from 1, times in ms)") }
            return r
        }
        let stateAt = try p["state_at"].map { v in
            guard let t = Int64(v) else { throw APIError.badData("state_at \(v): expected a time in ms") }
            return t
        }
        return Self.json(bytes: Array(try JSONEncoder.sorted.encode(try sync!.reconcile(host: host, epoch: epoch, ranges: ranges, stateAt: stateAt))))
    }

    /// `POST /api/v1/sync/rewind` (form: `host`, `epoch` (hex), `to`): takes the host's cursor back to tick
    /// `to`, so its agent sends what follows again (reconciliation found it differs).
    func syncRewind(_ p: Params) throws -> Response {
        guard let host = try syncHost(p) else { throw APIError.badData("the host parameter is required") }
        let epoch = try Self.syncEpoch(p)
        guard let v = p["to"], let to = UInt64(v) else { throw APIError.badData("to: expected a tick sequence number") }
        return Self.json(bytes: Array(try JSONEncoder.sorted.encode(try sync!.rewind(host: host, epoch: epoch, to: to))))
    }

    static func syncEpoch(_ p: Params) throws -> UInt64 {
        guard let v = p["epoch"], let epoch = UInt64(v, radix: 16) else { throw APIError.badData("epoch: expected the store's epoch in hex") }
        return epoch
    }

    /// `GET /api/v1/sync/addresses`: `{"ADDRESS": "HOST", ...}`, the fleet's addresses as this hub resolves
    /// them, for agents and relays that name connections' peers before their policy hashes the addresses.
    func syncAddresses(_ p: Params) throws -> Response {
        guard let sync else { throw APIError.unavailable("this server is not a hub") }
        return Self.json(bytes: Array(try JSONEncoder.sorted.encode(sync.fleetAddresses())))
    }

    /// `GET /api/v1/sync/cursors[?version=V]`: every host's cursor — a relaying hub's handshake.
    func syncCursors(_ p: Params) throws -> Response {
        guard let sync else { throw APIError.unavailable("this server does not accept pushes") }
        if let v = p["version"] {
            guard let version = Int(v) else { throw APIError.badData("version \(v): expected a number") }
            try sync.hello(host: nil, version: version, agentClock: nil, latest: nil)
        }
        return Self.json(bytes: Array(try JSONEncoder.sorted.encode(try sync.cursors())))
    }

    /// `POST /api/v1/sync/push?host=H[&lane=live]`: a stream of frames (`u32 big-endian length · batch`) up, JSON
    /// acknowledgement lines down (applied frames coalesced every few seconds, the rest at once). One request carries many batches, so a
    /// tick costs its batch and four bytes, not a request.
    func syncPush(_ request: Request, _ p: Params) throws -> Response {
        let host = try syncHost(p)
        // A relay names its datacenter; an agent's hosts are in this hub's.
        let datacenter = host == nil ? p["datacenter"].flatMap { $0.isEmpty ? nil : String($0.prefix(64)) } : nil
        // `lane=live`: one-tick batches standing alone while the in-order session catches up ("Two lanes").
        let live = p["lane"] == "live"
        if let lane = p["lane"], lane != "live" { throw APIError.badData("lane \(lane): the only other lane is live (the in-order lane names none)") }
        let receiver = sync!
        guard pushes.acquire(p.caller, limit: access.maxPushSessionsPerCaller, total: access.maxPushSessions) else {
            throw APIError(type: "too_many_requests", message: "too many push sessions open (at most \(access.maxPushSessionsPerCaller) per token, \(access.maxPushSessions) in all)", status: .tooManyRequests)
        }
        let (streams, caller) = (pushes, p.caller)
        let encoding = request.headers[.contentEncoding]?.lowercased()
        nonisolated(unsafe) let decoder = encoding.flatMap { receiver.streamDecoder(for: $0) } // used by the reader task only
        if let encoding, decoder == nil {
            streams.release(caller)
            throw APIError(type: "bad_data", message: "push sessions may be sent as they are or with Content-Encoding: zstd, not \(encoding)", status: .unsupportedMediaType)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "application/x-ndjson", .cacheControl: "no-cache"],
            body: ResponseBody { writer in
                defer { streams.release(caller) }
                // Frames are cut from the body and applied on a task of their own, so a server shutting down
                // can end the stream (else it would wait for the agent forever); the body is read no faster
                // than frames are applied, so a batch that waits (the hub's catch-up budget) holds back its
                // sender through TCP.
                let (items, feed) = AsyncStream.makeStream(of: SyncAck.self)
                func handle(_ frame: [UInt8]) async -> SyncAck? {
                    guard live else {
                        if let (wait, named) = receiver.catchUpWait(frame) {
                            // Said at once, so the sender sends its newest ticks on the live lane meanwhile.
                            feed.yield(SyncAck(outcome: "behind", host: host == nil ? named : nil,
                                               waitMs: Int(wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000)))
                            try? await Task.sleep(for: wait)
                        }
                        return await receiver.apply(frame, host: host, datacenter: datacenter)
                    }
                    // The live lane: nothing acknowledged (nothing stored); refusals are said.
                    do { _ = try await receiver.preview(frame, host: host, datacenter: datacenter); return nil } catch {
                        return SyncAck(outcome: "refused", message: "\(error)")
                    }
                }
                let reader = Task {
                    var pending = ByteBuffer()
                    defer { feed.finish() }
                    do {
                        for try await var chunk in request.body {
                            if let decoder {
                                do { pending.writeBytes(try decoder.decompress(Array(chunk.readableBytesView))) } catch {
                                    feed.yield(SyncAck(outcome: "refused", message: "\(error)"))
                                    return
                                }
                            } else {
                                pending.writeBuffer(&chunk)
                            }
                            while pending.readableBytes >= 4 {
                                let length = Int(pending.getInteger(at: pending.readerIndex, as: UInt32.self)!)
                                guard length <= Self.maxSyncFrame else {
                                    feed.yield(SyncAck(outcome: "refused", message: "frame of \(length) bytes exceeds \(Self.maxSyncFrame)"))
                                    return
                                }
                                guard pending.readableBytes >= 4 + length else { break }
                                pending.moveReaderIndex(forwardBy: 4)
                                if let ack = await handle(pending.readBytes(length: length)!) { feed.yield(ack) }
                            }
                            pending.discardReadBytes()
                        }
                        if pending.readableBytes > 0 { feed.yield(SyncAck(outcome: "refused", message: "the stream ended inside a frame (\(pending.readableBytes) bytes)")) }
                    } catch {
                        // The agent went away; what was applied, its next handshake learns from the cursor.
                    }
                }
                let encoder = JSONEncoder.sorted
                try await withGracefulShutdownHandler {
                    // Applied frames are acknowledged at most every `syncAckInterval` (the agent resumes from the
                    // cursor, not from acknowledgements: a tick a second needs no ack a second); anything else at once.
                    // Per host: a relay's session carries many.
                    var held: [String: SyncAck] = [:]
                    var lastSent = ContinuousClock.now
                    func send(_ ack: SyncAck) async throws {
                        var line = try encoder.encode(ack)
                        line.append(0x0A)
                        try await writer.write(ByteBuffer(bytes: line))
                        lastSent = ContinuousClock.now
                    }
                    for await ack in items {
                        let key = ack.host ?? ""
                        if ack.outcome == "applied" || ack.outcome == "duplicate" {
                            held[key] = held[key].map { SyncAck(outcome: "applied", host: ack.host, first: $0.first, last: ack.last ?? $0.last, samples: ($0.samples ?? 0) + (ack.samples ?? 0)) } ?? ack
                            if ContinuousClock.now - lastSent >= Self.syncAckInterval {
                                for h in held.values.sorted(by: { ($0.host ?? "") < ($1.host ?? "") }) { try await send(h) }
                                held = [:]
                            }
                        } else {
                            if let h = held.removeValue(forKey: key) { try await send(h) }
                            try await send(ack)
                        }
                    }
                    for h in held.values { try? await send(h) } // the agent may be gone already
                } onGracefulShutdown: {
                    reader.cancel()
                    feed.finish()
                }
                reader.cancel()
                try await writer.finish(nil)
            }
        )
    }
}

extension TwinAPI {
    /// `POST /api/v1/sync/follow` (form: `after=ID`, `held=HOST:EPOCH:TICK` per host the follower holds):
    /// the hub's outbox from `after` on as a stream of frames (`u64 big-endian outbox id · u32 length ·
    /// batch`), then each batch as the hub applies it, until the follower goes away. With
    /// `Accept-Encoding: zstd` the response is one zstd stream flushed after each burst.
    func syncFollow(_ request: Request, _ p: Params) throws -> Response {
        guard let sync else { throw APIError.unavailable("this server keeps no outbox to follow (a hub does: `hosttwin serve` on a data directory no `run` writes)") }
        let after = try p["after"].map { v -> Int64 in
            guard let n = Int64(v), n >= 0 else { throw APIError.badData("after \(v): expected an outbox id") }
            return n
        } ?? 0
        let held = try p.all("held").map { v -> SyncCursor in
            let parts = v.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 3, !parts[0].isEmpty, UInt64(parts[1], radix: 16) != nil, let through = UInt64(parts[2]) else {
                throw APIError.badData("held \(v): expected HOST:EPOCH(hex):TICK")
            }
            return SyncCursor(host: String(parts[0]), epoch: String(parts[1]), appliedThrough: through)
        }
        let policy: DataPolicy?
        do { policy = try p.identity.policy.map { try DataPolicy.parse($0, file: "the token's policy") } } catch {
            throw APIError.internal("\(error)")
        }
        let session = try sync.follow(held: held, after: after, policy: policy)
        guard pushes.acquire(p.caller, limit: access.maxPushSessionsPerCaller, total: access.maxPushSessions) else {
            throw APIError(type: "too_many_requests", message: "too many sync sessions open (at most \(access.maxPushSessionsPerCaller) per token, \(access.maxPushSessions) in all)", status: .tooManyRequests)
        }
        let (streams, caller) = (pushes, p.caller)
        let zstd = (request.headers[.acceptEncoding] ?? "").lowercased().contains("zstd")
        nonisolated(unsafe) let encoder = zstd ? sync.streamEncoder() : nil // used by the writing task only
        nonisolated(unsafe) let reader = session
        var headers: HTTPFields = [.contentType: "application/x-hosttwin-sync", .cacheControl: "no-cache"]
        if zstd { headers[.contentEncoding] = "zstd" }
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            defer { streams.release(caller) }
            // Read on a task of its own, so a server shutting down can end the stream.
            let (chunks, feed) = AsyncThrowingStream.makeStream(of: [UInt8].self)
            let producer = Task {
                do {
                    while !Task.isCancelled {
                        let batches = try await reader.next()
                        if batches.isEmpty {
                            try await Task.sleep(for: .milliseconds(50))
                            continue
                        }
                        var out: [UInt8] = []
                        for b in batches {
                            withUnsafeBytes(of: UInt64(b.id).bigEndian) { out += $0 }
                            withUnsafeBytes(of: UInt32(b.batch.count).bigEndian) { out += $0 }
                            out += b.batch
                        }
                        feed.yield(try encoder?.compress(out) ?? out)
                    }
                    feed.finish()
                } catch {
                    feed.finish(throwing: error)
                }
            }
            try await withGracefulShutdownHandler {
                for try await chunk in chunks { try await writer.write(ByteBuffer(bytes: chunk)) }
            } onGracefulShutdown: {
                producer.cancel()
            }
            producer.cancel()
            try await writer.finish(nil)
        })
    }
}

extension JSONEncoder {
    /// Sorted keys: stable output for tests and diffs.
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }
}
