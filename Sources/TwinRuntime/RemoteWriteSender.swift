import Foundation
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization
import TwinCore
import TwinQuery
import TwinServer
import TwinStorage
import TwinSync

/// Sends every host's series to one Prometheus remote_write 1.0 receiver (`--remote-write URL`).
///
/// The store is the durable queue: the sender keeps, per host, the time of the last sample the receiver
/// took (`remote_write_positions`, saved after each round), and each round reads what came after it — up to
/// the host's last committed tick — from the store as queries do. A receiver that is down holds nothing up:
/// the data stay in the store and are sent when it answers again, oldest first, at most ``Settings/maxSpan``
/// of a host a round. Series are spread over ``Settings/shards`` connections by series id, so each series'
/// samples go in time order on one of them; requests hold at most ``Settings/maxSamplesPerSend`` samples.
/// Network errors, 429 and 5xx are retried with exponential back-off; another 4xx drops the request (the
/// receiver refuses it for good, as Prometheus does). Delivery is at least once: a round cut short by a
/// restart is sent again, which Prometheus-compatible receivers take as duplicates.
public final class RemoteWriteSender: Service, Sendable {
    /// Where to send: a URL without credentials (a token goes as `Authorization: Bearer`).
    public struct Destination: Sendable {
        /// The URL as logged and as the positions and metrics name it: scheme, host, port and path.
        public let name: String
        let path: String
        let client: RemoteTwin

        /// `url` is `http(s)://HOST[:PORT]/PATH`; user and password in the URL are refused (they would be
        /// logged and stored): give a bearer token instead.
        public init(url: String, token: String? = nil, caFile: String? = nil) throws {
            guard let u = URLComponents(string: url), let scheme = u.scheme?.lowercased(), scheme == "http" || scheme == "https",
                  let host = u.host, !host.isEmpty else {
                throw TwinError.badInput("--remote-write \(url): expected http(s)://HOST[:PORT]/PATH, e.g. http://127.0.0.1:9090/api/v1/write")
            }
            guard u.user == nil, u.password == nil else {
                throw TwinError.badInput("--remote-write: credentials in the URL would be logged; give a bearer token with --remote-write-token-file")
            }
            let port = u.port ?? (scheme == "https" ? 443 : 80)
            var client = try RemoteTwin(url: "\(scheme)://\(host.contains(":") ? "[\(host)]" : host):\(port)")
            client.token = token
            client.caFile = caFile
            client.timeout = .seconds(30)
            self.client = client
            path = u.percentEncodedPath.isEmpty ? "/" : u.percentEncodedPath + (u.percentEncodedQuery.map { "?" + $0 } ?? "")
            name = "\(scheme)://\(host.contains(":") ? "[\(host)]" : host):\(port)\(u.percentEncodedPath)"
        }
    }

    /// How the sender batches, spreads and retries.
    public struct Settings: Sendable {
        /// Connections sending at once; a series always goes on the same one.
        public var shards = 4
        /// The most samples in one request (Prometheus sends 2,000).
        public var maxSamplesPerSend = 2_000
        /// How often the store is looked at for new samples.
        public var interval: Duration = .seconds(1)
        /// The most of one host's history read in one round (catching up goes on round after round).
        public var maxSpan: Int64 = 5 * 60_000
        /// The most samples read in one round, over all hosts (the hosts furthest behind go first).
        public var maxSamplesPerRound = 1_000_000
        public var minBackoff: Duration = .milliseconds(100)
        public var maxBackoff: Duration = .seconds(30)
        /// Hosts that came by remote_write themselves (no agent, no ticks: each series has its own sample
        /// times) are sent this far behind their newest sample, so a series that lags the others is not
        /// skipped.
        public var remoteWrittenMargin: Int64 = 120_000

        public init() {}
    }

    /// What one round did.
    public struct Round: Sendable, Equatable {
        public var samples = 0
        public var series = 0
        public var requests = 0
        /// Compressed request bytes sent (each request once, retries aside).
        public var bytes = 0
        /// Samples in requests the receiver refused for good (4xx other than 429).
        public var dropped = 0
        /// Per host, the time the round sent through.
        public var positions: [String: Int64] = [:]

        public init() {}
    }

    public let destination: Destination
    public let settings: Settings
    private let store: TwinStore
    /// Whether the store is a hub's (series labelled by `host`, hosts from its cursors).
    private let hub: Bool
    private let scrapeLabels: ScrapeLabels
    private let logger: Logger
    /// The catalog's series grouped by host, as far as the catalog had been read (``seriesByHost()``).
    private let grouped = Mutex<(count: Int, byHost: [String: [Outgoing]])>((0, [:]))
    /// When a failing receiver was last logged (ms).
    private let warned = Mutex<Int64>(0)
    /// The event loop every request of this sender runs on.
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    /// The positions row that records when the destination was first sent to: hosts it has no position
    /// for (a host that joined later) are sent from then.
    static let startedRow = "*"

    public init(store: TwinStore, destination: Destination, hub: Bool, settings: Settings = Settings(), logger: Logger) {
        self.store = store
        self.destination = destination
        self.hub = hub
        self.settings = settings
        scrapeLabels = ScrapeLabels().resolved(store)
        self.logger = logger
    }

    deinit { try? group.syncShutdownGracefully() }

    public func run() async throws {
        logger.info("remote_write to \(destination.name): \(settings.shards) shard(s), up to \(settings.maxSamplesPerSend) samples a request")
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let r = try await cancelWhenGracefulShutdown { try await self.round(now: TwinTime.nowMillis()) }
                // A full round means more is waiting: go on at once.
                if r.samples >= settings.maxSamplesPerRound { continue }
            } catch is CancellationError { break } catch {
                logger.warning("remote_write to \(destination.name): \(error)")
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.settings.interval) }
        }
    }

    /// One round: reads each host's samples after its position, sends them and saves the new positions once
    /// every request was delivered (or dropped for good).
    public func round(now: Int64) async throws -> Round {
        var positions = try store.remoteWritePositions(destination: destination.name)
        let started: Int64
        if let s = positions[Self.startedRow] { started = s } else {
            started = now
            positions[Self.startedRow] = now
            try store.saveRemoteWritePositions(destination: destination.name, [Self.startedRow: now])
        }
        var newest: [(host: String, through: Int64)] = []
        if hub {
            for c in try store.remoteCursors() {
                guard let t = c.lastTime else { continue }
                newest.append((c.host, c.epoch == 0 ? t - settings.remoteWrittenMargin : t))
            }
        } else if let t = try store.lastTick() {
            newest.append(("", t))
        }
        // Furthest behind first, so a round's sample budget goes where it is needed most.
        newest.sort { (positions[$0.host] ?? started) < (positions[$1.host] ?? started) }
        let byHost = try seriesByHost()

        var round = Round()
        var shards = [[RemoteWriteCodec.Series]](repeating: [], count: max(1, settings.shards))
        for (host, through) in newest {
            let from = positions[host] ?? started
            guard through > from, round.samples < settings.maxSamplesPerRound else { continue }
            let to = min(through, from + settings.maxSpan)
            round.positions[host] = to
            guard let series = byHost[host],
                  let columns = try store.sampleColumns(ids: series.map(\.id), from: from + 1, to: to) else { continue }
            for info in series {
                guard let c = columns[info.id], c.count > 0 else { continue }
                let shard = Int(UInt64(bitPattern: info.id) % UInt64(shards.count))
                shards[shard].append(RemoteWriteCodec.Series(metric: info.metric, labels: info.labels, t: c.t, v: c.v))
                round.samples += c.count
                round.series += 1
            }
        }
        guard !round.positions.isEmpty else { return round }
        let outcomes = try await withThrowingTaskGroup(of: Shipped.self) { tasks in
            for list in shards where !list.isEmpty {
                tasks.addTask { try await self.sendShard(list) }
            }
            var total: [Shipped] = []
            for try await o in tasks { total.append(o) }
            return total
        }
        round.requests = outcomes.reduce(0) { $0 + $1.requests }
        round.bytes = outcomes.reduce(0) { $0 + $1.bytes }
        round.dropped = outcomes.reduce(0) { $0 + $1.dropped }
        try store.saveRemoteWritePositions(destination: destination.name, round.positions)
        let dims = [("url", destination.name)]
        Counter(label: "hosttwin_remote_write_sent_samples_total", dimensions: dims).increment(by: round.samples - round.dropped)
        if round.dropped > 0 { Counter(label: "hosttwin_remote_write_dropped_samples_total", dimensions: dims).increment(by: round.dropped) }
        let behind = newest.map { $0.through - (round.positions[$0.host] ?? positions[$0.host] ?? started) }.max() ?? 0
        Gauge(label: "hosttwin_remote_write_behind_seconds", dimensions: dims).record(Double(max(0, behind)) / 1000)
        return round
    }

    /// What one shard sent.
    private struct Shipped { var requests = 0, bytes = 0, dropped = 0 }

    /// A series as sent: its id, name and labels (the Prometheus view's).
    struct Outgoing: Sendable {
        var id: Int64
        var metric: String
        var labels: [Label]
    }

    /// The store's series by host, with the labels they are sent with; only series added to the catalog
    /// since the last round are looked at (series are never removed from it).
    private func seriesByHost() throws -> [String: [Outgoing]] {
        let catalog = try store.seriesCatalog()
        return grouped.withLock { g in
            guard g.count < catalog.count else { return g.byHost }
            for s in catalog[g.count...] {
                var labels = s.key.labels.pairs
                scrapeLabels.add(to: &labels)
                g.byHost[hub ? (s.key.labels["host"] ?? "") : "", default: []].append(Outgoing(id: s.id, metric: s.key.metric, labels: labels))
            }
            g.count = catalog.count
            return g.byHost
        }
    }

    /// Sends one shard's series in requests of at most `maxSamplesPerSend` samples, in order; a series
    /// longer than that is cut into consecutive pieces.
    private func sendShard(_ list: [RemoteWriteCodec.Series]) async throws -> Shipped {
        var shipped = Shipped()
        var pending: [RemoteWriteCodec.Series] = []
        var count = 0
        func flush() async throws {
            guard !pending.isEmpty else { return }
            let body = RemoteWriteCodec.encode(pending)
            if try await !deliver(body) { shipped.dropped += count }
            shipped.requests += 1
            shipped.bytes += body.count
            pending.removeAll(keepingCapacity: true)
            count = 0
        }
        let limit = max(1, settings.maxSamplesPerSend)
        for s in list {
            var start = 0
            while start < s.t.count {
                let n = min(s.t.count - start, limit - count)
                // A series that fits whole goes as it is; a longer one in consecutive pieces.
                pending.append(n == s.t.count ? s : RemoteWriteCodec.Series(metric: s.metric, labels: s.labels,
                                                                               t: Array(s.t[start..<start + n]), v: Array(s.v[start..<start + n])))
                count += n
                start += n
                if count >= limit { try await flush() }
            }
        }
        try await flush()
        return shipped
    }

    /// Posts one body until the receiver takes it (true) or refuses it for good (false); throws only when
    /// cancelled.
    private func deliver(_ body: [UInt8]) async throws -> Bool {
        var backoff = settings.minBackoff
        while true {
            try Task.checkCancellation()
            let why: String
            do {
                let r = try await destination.client.fetch(.POST, destination.path, body: body, contentType: RemoteWriteCodec.contentType,
                                                           headers: RemoteWriteCodec.headers, group: group)
                if (200..<300).contains(r.status) { return true }
                if r.status != 429 && r.status < 500 {
                    logger.warning("remote_write to \(destination.name): refused with \(r.status) (\(r.text.prefix(300))); these samples are dropped")
                    return false
                }
                why = "\(destination.name) answered \(r.status): \(r.text.prefix(200))"
            } catch {
                why = "\(error)"
            }
            Counter(label: "hosttwin_remote_write_retries_total", dimensions: [("url", destination.name)]).increment()
            // Once the back-off is at its longest, and then at most every 30 s.
            if backoff >= settings.maxBackoff, warned.withLock({ last in
                let now = TwinTime.nowMillis()
                defer { if now - last >= 30_000 { last = now } }
                return now - last >= 30_000
            }) {
                logger.warning("remote_write: \(why); retrying every \(settings.maxBackoff) (the samples wait in the store)")
            }
            try await Task.sleep(for: backoff)
            backoff = min(backoff * 2, settings.maxBackoff)
        }
    }
}
