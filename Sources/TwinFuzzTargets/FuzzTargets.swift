import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import TwinAnalytics
import TwinCollectors
import TwinCore
import TwinQuery
import TwinRules
import TwinSecurity
import TwinStorage
import TwinServer
import TwinSync
import TwinPostgres
import TwinRuntime

/// The fuzz targets: every parser of outside input, each a function of raw bytes that must return
/// without crashing whatever the bytes. libFuzzer drives them (`scripts/fuzz.sh TARGET SECONDS`, the
/// `HostTwinFuzz` executable built with `-sanitize=fuzzer`); the test suite replays the saved corpora
/// through the same functions (`FuzzCorpusTests`), so CI needs no sanitizer build.
public enum FuzzTargets {
    /// Target names and their functions.
    public static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "procfs": procfs, "exposition": exposition, "promql": promql, "time": time, "chunk": chunk,
        "log": log, "regex": regex, "sql": sql, "http": http, "redaction": redaction, "policy": policy,
        "config": config, "versions": versions, "sync": sync, "syncstream": syncStream, "follow": follow,
        "hubanswers": hubAnswers, "detectorstate": detectorState, "rules": rules, "remotewrite": remoteWrite,
        "urls": urls, "tracepoint": tracepoint,
    ]

    /// The kernel's TCP tracepoint as the sockets collector reads it: the bytes as a tracefs `format` file,
    /// and as perf ring records laid out by this VM's format (Tests' fixture), every sample's raw bytes
    /// through the layout. Ranges handed out must lie inside the bytes.
    static func tracepoint(_ data: [UInt8]) {
        _ = TCPStateLayout(fields: parseTracepointFormat(String(decoding: data, as: UTF8.self)))
        data.withUnsafeBytes { bytes in
            let (samples, _) = parsePerfSamples(bytes)
            for s in samples {
                guard s.raw.lowerBound >= 0, s.raw.upperBound <= bytes.count else { fatalError("a sample's raw bytes run past the ring") }
                _ = Self.tcpLayout.change(raw: UnsafeRawBufferPointer(rebasing: bytes[s.raw]), time: s.time)
            }
        }
    }

    /// `inet_sock_set_state`'s layout on Linux 6.18 (offsets as in its tracefs format).
    static let tcpLayout: TCPStateLayout = {
        let f = { (o: Int, n: Int) in TracepointField(offset: o, size: n) }
        return TCPStateLayout(fields: ["oldstate": f(16, 4), "newstate": f(20, 4), "sport": f(24, 2), "dport": f(26, 2), "family": f(28, 2),
                                       "protocol": f(30, 2), "saddr": f(32, 4), "daddr": f(36, 4), "saddr_v6": f(40, 16), "daddr_v6": f(56, 16)])!
    }()

    /// URLs given on the command line: `--remote-write URL` and a PostgreSQL store's `postgres://...`; refused
    /// with a message, never a crash.
    static func urls(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        _ = try? RemoteWriteSender.Destination(url: text)
        if let location = try? PostgresDatabase.Location(url: text) { _ = location.description }
    }

    /// Prometheus remote_write bodies as a hub receives them: the bytes as a snappy block, and the bytes
    /// compressed (so the protobuf decoder sees them as they are). A decoded request is encoded again and
    /// must decode to the same series; each series' host is read as the hub reads it.
    static func remoteWrite(_ data: [UInt8]) {
        _ = try? RemoteWriteCodec.decode(data)
        guard let request = try? RemoteWriteCodec.decode(Snappy.compress(data)) else { return }
        guard let again = try? RemoteWriteCodec.decode(RemoteWriteCodec.encode(request.series, types: request.types)),
              again.series.count == request.series.count,
              zip(again.series, request.series).allSatisfy({ $0.metric == $1.metric && $0.labels == $1.labels && $0.t == $1.t
                  && zip($0.v, $1.v).allSatisfy { $0.bitPattern == $1.bitPattern } }) else {
            fatalError("a decoded remote_write request does not survive encoding again")
        }
        for s in request.series { _ = HubIngest.remoteWriteHost(s.labels, label: "instance") }
    }

    /// Rule files, promtool test files and alerting configurations: parsed and checked; what parses is evaluated for a few
    /// evaluations over the fixture's series, templates expanded, under tight query limits.
    static func rules(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        _ = try? PromtoolTestRunner.parse(text, source: "fuzz")
        _ = try? AlertingConfig.parse(text, source: "fuzz")
        _ = try? AlertTemplate(text).expand(.init(labels: ["a": "b"], value: 1.5))
        guard let file = try? RuleFile.parse(text, source: "fuzz") else { return }
        var engine = Fixture.shared.engine
        engine.maxSamples = 50_000
        engine.timeout = 200
        let recorded = RecordedSeries(keep: 600_000)
        engine.source = LayeredSource(base: engine.source, recorded: recorded)
        let evaluator = RuleEvaluator(files: [file], context: RuleContext(engine: engine, store: nil), recorded: recorded, defaultInterval: 60_000)
        for step in 0..<3 {
            for g in evaluator.groups.indices { evaluator.evaluate(group: g, at: Fixture.t0 + 300_000 + Int64(step) * 60_000) }
        }
        evaluator.load([file], defaultInterval: 60_000, at: Fixture.t0 + 600_000)
    }

    /// A series' anomaly detector state as read back from the store (`detector_states`): restored or
    /// refused, and a restored one scores the next samples within [0, 1]. The same bytes as the retired
    /// series' `meta` text: parsed or refused, and what parses writes back to the same set.
    static func detectorState(_ data: [UInt8]) {
        if let retired = RetiredDetectors(text: String(decoding: data, as: UTF8.self)), RetiredDetectors(text: retired.text) != retired {
            fatalError("a retired set it parsed does not round-trip")
        }
        guard var scan = SeriesScan(state: data) else { return }
        for (i, x) in [1.0, 5, .nan, 1e300, -1e300, 3].enumerated() {
            let p = RollupPoint(t: Int64(i + 1) * 60_000 &+ (scan.through ?? 0), min: x, max: x, sum: x, count: 1, last: x)
            if let (_, score) = scan.feed(p, counter: i % 2 == 0), !(score >= 0 && score <= 1) { fatalError("score \(score) outside [0, 1]") }
        }
        guard SeriesScan(state: scan.state) != nil else { fatalError("a state it wrote does not restore") }
    }

    /// What an agent or relay reads from its hub besides batches: acknowledgement lines (a `behind` or
    /// `elsewhere` wait is acted on within a minute, whatever the line says), handshake cursors (a
    /// `standby` one included) and the address map (`/api/v1/sync/addresses`).
    static func hubAnswers(_ data: [UInt8]) {
        for line in data.split(separator: UInt8(ascii: "\n")) {
            _ = try? JSONDecoder().decode(SyncCursor.self, from: Data(line))
            guard let ack = try? JSONDecoder().decode(SyncAck.self, from: Data(line)) else { continue }
            guard (0...60_000).contains(ack.boundedWaitMs) else { fatalError("a wait of \(ack.boundedWaitMs) ms acted on") }
        }
        if let map = try? JSONDecoder().decode([String: String].self, from: Data(data)) {
            let book = FleetAddressBook()
            let learnt = book.learn(upstream: map)
            if learnt, map.count > FleetAddressBook.maxUpstream { fatalError("an address map of \(map.count) entries learnt") }
        }
    }

    /// Every /proc and /sys parser on the same bytes (text and binary forms).
    static func procfs(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        _ = parseProcStat(text); _ = parseMeminfo(text); _ = parseLoadavg(text); _ = parsePressure(text)
        _ = parseDiskstats(text); _ = parseMountinfo(text); _ = parseNetDev(text); _ = parseSNMP(text); _ = parseSNMP6(text)
        _ = parseSockstat(text); _ = data.withUnsafeBufferPointer { sockstatInUse($0, line: "UDP:") }; var inUse: [Double] = []; data.withUnsafeBufferPointer { everySockstatInUse($0, into: &inUse) }; _ = parseKeyValueLines(text); _ = parsePidStat(text); _ = parsePidIO(text); _ = parseCmdline(text)
        _ = parsePasswd(text); _ = parseSocketTable(text); _ = parseDpkgStatus(text); _ = parseOSRelease(text); _ = parseCPUInfo(text)
        _ = parseSystemctlUnits(text); _ = parseSystemdUnit(text)
        _ = parseARPEntries(text); _ = parseSoftnet(text); _ = parseConntrackStat(text); _ = parseUDPQueues(text); _ = osVersionNumber(text)
        _ = parseSchedstat(text); _ = parseCPUList(text); _ = parseMDStat(text); _ = parseZFSKstat(text); _ = parseZFSIOKstat(text)
        _ = parseXFSStats(text); _ = parseRPCStats(text); _ = parseIPVS(text); _ = parseIPVSStats(text); _ = parseBcacheSize(text[...])
        data.withUnsafeBufferPointer { b in
            _ = parseInetDiagMessages(b); _ = parseUtmp(b); _ = parsePidStat(b); _ = parsePidIO(b); _ = parseLoadavg(b); _ = parsePressure(b)
        }
        data.withUnsafeBytes { _ = parseProcConnectorEvents($0); _ = parseFanotifyEvents($0) }
        // The ground-truth tools' output `bench fidelity` parses.
        _ = GroundTruth.parsePS(text); _ = GroundTruth.parseSS(text, family: "ipv6", listening: true); _ = GroundTruth.parseSS(text, family: "ipv4", listening: false)
        _ = GroundTruth.parseFindmnt(text); _ = GroundTruth.parseDpkgQuery(text); _ = GroundTruth.parseIPLink(text)
        // Configuration the files, accounts and packages collectors read, and the compliance checks parse.
        _ = parsePasswdEntries(text); _ = parsePackagesIndex(text)
        _ = SSHDConfig.effective(["/etc/ssh/sshd_config": text, "/etc/ssh/sshd_config.d/a.conf": text])
        let half = text.index(text.startIndex, offsetBy: text.count / 2)
        _ = DebianVersion.compare(String(text[..<half]), String(text[half...]))
        if data.count <= 4096 { _ = TextDiff.unified(String(text[..<half]), String(text[half...]), from: "a", to: "b") }
        data.withUnsafeBytes { raw in _ = FileCollector.isText(raw); _ = lz4FrameDecompress(raw, limit: 1 << 20) }
    }

    /// The Prometheus text exposition parser (`hosttwin import`).
    static func exposition(_ data: [UInt8]) {
        data.withUnsafeBytes { raw in
            var p = ExpositionParser(raw)
            var n = 0
            while n < 100_000, let line = try? p.next() { _ = line; n += 1 }
        }
    }

    /// PromQL: parse, then evaluate what parses over a small store under tight limits.
    static func promql(_ data: [UInt8]) {
        guard let expr = try? PromQLParser.parse(String(decoding: data, as: UTF8.self)) else { return }
        // What /api/v1/format_query writes for it must parse again.
        precondition((try? PromQLParser.parse(PromQLPrinter.pretty(expr))) != nil, "format_query wrote what does not parse")
        var engine = Fixture.shared.engine
        engine.maxSamples = 50_000
        engine.timeout = 200
        _ = try? engine.instant(expr, at: Fixture.t0 + 300_000)
        _ = try? engine.range(expr, start: Fixture.t0, end: Fixture.t0 + 600_000, step: 60_000)
    }

    /// Times and durations as users and URLs write them.
    static func time(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        _ = try? TwinTime.parse(text, now: Fixture.t0)
        _ = try? TwinTime.parseDuration(text)
        _ = TwinTime.parseRFC3339(text)
        if let t = try? TwinTime.parse(text, now: Fixture.t0) { _ = TwinTime.rfc3339(t) }
    }

    /// Sealed chunks and rollup blocks as read back from disk.
    static func chunk(_ data: [UInt8]) {
        _ = try? ChunkCodec.decode(data)
        // Most random bytes fail the checksum; with a right one the decoder itself is reached.
        let sealed = ChunkCodec.withChecksum(data)
        _ = try? ChunkCodec.decode(sealed)
        _ = try? ChunkCodec.decode(sealed, columnCount: 5)
        // A group row's directory, its checksum made right, then its data: the same bytes, raw or deflated.
        if let directory = try? GroupBlock.directory(ChunkCodec.withChecksum(data)) { _ = try? GroupBlock.rawData(data, directory) }
    }

    /// Version blocks, from disk or the wire. The first byte picks the format (top bit) and flags of a
    /// block whose checksum is made right, so the decoder itself is reached.
    static func versions(_ data: [UInt8]) {
        _ = try? VersionCodec.decode(data)
        guard let flags = data.first else { return }
        _ = try? VersionCodec.decode(ChunkCodec.withChecksum([1 + flags >> 7, flags & 7] + data.dropFirst()))
    }

    /// Sync batches as a hub receives them. The first byte picks the compression of a batch whose checksum
    /// is made right; a decoded batch is encoded again and must decode to the same batch.
    static func sync(_ data: [UInt8]) {
        _ = try? SyncCodec.decode(data)
        guard let first = data.first else { return }
        if let (batch, _) = try? SyncCodec.decode(ChunkCodec.withChecksum([1, first & 1] + data.dropFirst())) {
            guard let again = try? SyncCodec.encode(batch), let back = try? SyncCodec.decode(again.bytes), back.batch == batch else {
                fatalError("a decoded batch does not survive encoding again")
            }
        }
    }

    /// A push session's body as a hub reads it: a zstd stream (cut in two at the first byte's offset), then
    /// frames of batches.
    static func syncStream(_ data: [UInt8]) {
        let d = SyncStreamDecompressor()
        d.maxOutput = 1 << 20
        let cut = data.isEmpty ? 0 : Int(data[0]) % (data.count + 1)
        guard let a = try? d.decompress(Array(data[..<cut])), let b = try? d.decompress(Array(data[cut...])) else { return }
        var rest = a + b
        while rest.count >= 4 {
            let n = Int(rest[0]) << 24 | Int(rest[1]) << 16 | Int(rest[2]) << 8 | Int(rest[3])
            guard rest.count >= 4 + n else { return }
            _ = try? SyncCodec.decode(Array(rest[4..<4 + n]))
            rest.removeFirst(4 + n)
        }
    }

    /// A follow stream as a replica reads it (uncompressed): the bytes in two chunks cut at the first byte's
    /// offset, framed as `u64 id · u32 length · batch`, each batch decoded.
    static func follow(_ data: [UInt8]) {
        var reader = FollowFrameReader()
        let cut = data.isEmpty ? 0 : Int(data[0]) % (data.count + 1)
        guard let a = try? reader.add(Array(data[..<cut])), let b = try? reader.add(Array(data[cut...])) else { return }
        for frame in a + b { _ = try? SyncCodec.decode(frame.batch) }
    }

    /// Head log records: the first byte splits the input into records. Unframed, as a segment file's
    /// records after their CRC and as `head_log` rows are read (``LogRecords`` decodes as their readers do).
    static func log(_ data: [UInt8]) {
        guard let first = data.first else { return }
        let size = max(1, Int(first))
        var records: [[UInt8]] = []
        var rest = data.dropFirst()
        while !rest.isEmpty {
            records.append(Array(rest.prefix(size)))
            rest = rest.dropFirst(size)
        }
        _ = try? LogRecords.decode(records)
    }

    /// Regular expressions (label matchers, label_replace): compile the first line, match the rest.
    static func regex(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        let parts = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
        guard let re = try? LinearRegex(String(parts[0])) else { return }
        let subject = parts.count > 1 ? String(parts[1]) : ""
        _ = re.wholeMatch(subject)
        _ = re.wholeMatchGroups(subject)
    }

    /// The SQL guard: any text as a query over the state views.
    static func sql(_ data: [UInt8]) {
        var limits = StateSQL.Limits()
        limits.timeout = 200
        limits.maxRows = 1000
        _ = try? StateSQL(store: Fixture.shared.store, limits: limits).run(String(decoding: data, as: UTF8.self), at: Fixture.t0 + 300_000)
    }

    /// Data policy files (`--policy`) and audit log lines (`audit verify` reads files anyone with write
    /// access could have edited).
    static func policy(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        if let p = try? DataPolicy.parse(text) {
            var entities: [EntityKind: [Entity]] = [.processes: [Entity(kind: .processes, key: "1@1", attributes: ["command": "x", "user": "root", "name": "init"])],
                                                    .connections: [Entity(kind: .connections, key: "tcp/1.2.3.4:5/6.7.8.9:10", attributes: ["remote_address": "6.7.8.9"])]]
            p.apply(to: &entities, keys: Fixture.shared.keys)
            _ = p.redactedForReaders(.processes, entities[.processes]?.first?.attributes ?? [:])
        }
        for line in text.split(separator: "\n") { _ = AuditLog.parse(String(line)) }
    }

    /// `run --config FILE` (JSON), and the durations and collector settings in it.
    static func config(_ data: [UInt8]) {
        guard let c = try? RunConfig.decode(Data(data), file: "fuzz.json") else { return }
        _ = try? c.selection()
        for d in [c.interval, c.headWindow, c.processSeriesMinAge, c.retention?.raw, c.retention?.minute, c.retention?.hour, c.retention?.state] {
            if let d { _ = try? TwinTime.parseDuration(d) }
        }
        if let l = c.listen { _ = try? TwinHTTPServer.parseListen(l) }
    }

    /// Secret redaction of command lines (NUL-separated arguments, as /proc/PID/cmdline), then the command as
    /// stored (cut past 4 KiB), as the processes collector does.
    static func redaction(_ data: [UInt8]) {
        let args = String(decoding: data, as: UTF8.self).split(separator: "\0", omittingEmptySubsequences: false).map(String.init)
        let stored = storedCommand(Redactor().redact(arguments: args).joined(separator: " "))
        precondition(stored.utf8.count <= commandLimit + 96, "a stored command over its limit")
    }

    /// Raw bytes as an HTTP/1.1 request, decoded by the server's own HTTP codec and answered by the API's
    /// router (every route, every parameter).
    static func http(_ data: [UInt8]) {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        do {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
            try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try channel.writeInbound(ByteBuffer(bytes: data))
        } catch { return }
        var head: HTTPRequest?
        var body = ByteBuffer()
        while let part = try? channel.readInbound(as: HTTPRequestPart.self) {
            switch part {
            case .head(let h): head = h
            case .body(var b): body.writeBuffer(&b)
            case .end:
                guard let h = head else { continue }
                let request = Request(head: h, body: .init(buffer: body))
                let done = DispatchSemaphore(value: 0)
                let api = Fixture.shared.api
                Task {
                    _ = await api.respond(to: request, source: "127.0.0.1")
                    done.signal()
                }
                done.wait()
                head = nil
                body.clear()
            }
        }
    }

    /// A small store (ten minutes of a few series, with state) shared by the targets that query.
    final class Fixture: @unchecked Sendable { // immutable after init
        static let t0: Int64 = 1_700_000_000_000
        static let shared = Fixture()
        let store: TwinStore
        let engine: PromQLEngine
        let api: TwinAPI
        let keys: KeyRing

        init() {
            let dir = NSTemporaryDirectory() + "hosttwin-fuzz-\(getpid())"
            try? FileManager.default.removeItem(atPath: dir)
            store = try! TwinStore.open(dataDir: dir)
            let writer = TwinWriter(store: store)
            try! writer.open()
            let importer = BulkImporter(writer: writer)
            var text = "# TYPE requests_total counter\n"
            for i in 0...60 {
                let t = Self.t0 + Int64(i) * 10_000
                text += "requests_total{job=\"api\",code=\"200\"} \(i * 10) \(t)\nrequests_total{job=\"api\",code=\"500\"} \(i) \(t)\n"
                text += "temp{room=\"a\"} \(Double(i) / 2) \(t)\ncpu_seconds_total{cpu=\"0\",mode=\"idle\"} \(i * 3) \(t)\n"
            }
            try! Array(text.utf8).withUnsafeBytes { try importer.ingest($0) }
            try! importer.flushBatch()
            try! writer.finish(now: Self.t0 + 600_000)
            engine = PromQLEngine(source: StoreSampleSource(store: store))
            keys = try! KeyRing(dataDir: dir, create: true)
            var logger = Logger(label: "fuzz")
            logger.logLevel = .critical
            api = TwinAPI(store: store, live: nil, metrics: SelfMetrics.bootstrap(), logger: logger)
        }
    }
}
