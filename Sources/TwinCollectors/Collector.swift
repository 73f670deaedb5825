import TwinCore

/// What a collector gets at each tick: where to read, a shared reader, and the observation to fill.
public struct CollectContext {
    public let paths: HostPaths
    public let reader: FileReader
    public let config: CollectorConfig
    public var observation: Observation
    /// How many times their interval the entity classes that may wait do wait, as the ``Sampler`` relaxes
    /// the non-essential collectors to stay within the CPU budget (1: as configured): within the essential
    /// collectors, the re-reads of idle processes and kernel threads, the `/proc` listing between the
    /// kernel's process events, and the dump of established TCP connections (``Sampler/relaxed(_:by:)``).
    public var relaxation: Int64 = 1
    /// What this collector last handed over may not have been stored (a commit failed, ``Sampler/restate()``):
    /// a kind handed over only when it changed (processes, connections, mounts, files) is handed over in full.
    public var restate = false

    public init(paths: HostPaths, reader: FileReader, config: CollectorConfig, observation: Observation) {
        self.paths = paths
        self.reader = reader
        self.config = config
        self.observation = observation
    }
}

/// What a collector's run came to: data, or no data (the source is absent on this host).
public enum CollectOutcome: Sendable, Equatable {
    case ok
    case noData(String)
}

/// One source of observations (`/proc/stat`, `/proc/meminfo`, sockets, ...). Each lives in its own file
/// and is listed once in ``CollectorRegistry``. A collector may keep state between ticks (caches of
/// slow facts), so it is a class owned by one collection loop.
public protocol Collector: AnyObject {
    /// The collector's name, as used in `--collector.NAME` style configuration and health lines.
    var name: String { get }
    /// Reads its sources and adds samples and entities to `context.observation`. Missing sources are
    /// reported as `.noData`, never thrown; throwing is for unexpected failures.
    func collect(_ context: inout CollectContext) throws -> CollectOutcome
}

/// A collector the kernel can tell about changes between ticks (change-driven capture): when
/// ``changeDescriptor`` becomes readable, ``refreshChanged(_:)`` re-reads only what changed and sets the
/// entities of its kind in full. The regular ``Collector/collect(_:)`` still runs at every tick and stays
/// the authority: whatever an event missed, the next listing corrects.
public protocol ChangeDrivenCollector: Collector {
    /// A descriptor that is readable when there are changes to refresh; nil when events are unavailable.
    var changeDescriptor: Int32? { get }
    /// When the collector wants a refresh without an event (ms since the epoch): a fast poll of what the
    /// kernel cannot announce, while it is changing; nil while it is steady.
    var nextRefresh: Int64? { get }
    /// Takes the pending changes; true when `context.observation` got the kind's whole, changed entity set.
    func refreshChanged(_ context: inout CollectContext) -> Bool
    /// At every tick, after the collectors due ran: reads a kernel queue that must not overflow while the
    /// collector waits for its next run (a relaxed interval) or a refresh the budget holds back. What changed
    /// is handed over at that run, or, where a run is far off and the change cheap to read (a package
    /// installed), with this tick's observation.
    func keepUp(_ context: inout CollectContext)
}

extension ChangeDrivenCollector {
    public var changeDescriptor: Int32? { nil }
    public var nextRefresh: Int64? { nil }
    public func keepUp(_ context: inout CollectContext) {}
}

/// Per-collector settings and the options some collectors take.
public struct CollectorConfig: Sendable, Codable, Hashable {
    /// Paths (files or directories) whose newest modification time and total size the `backup` collector reports.
    public var backupPaths: [String] = []
    /// Extra secret words for command-line redaction.
    public var extraSecretWords: [String] = []
    /// A process gets its own series (`hosttwin_process_*`) once it has run this long (ms); younger ones
    /// are entities only. Most processes of a busy host live a second or two, and five series of a few
    /// samples each cost far more to index than they hold (docs/ARCHITECTURE.md).
    public var processSeriesMinAge: Int64 = 10_000
    /// The textfile collector's directory of `*.prom` files; nil: Debian node_exporter's, which may be absent.
    public var textfileDirectory: String?
    /// Paths whose files the `files` collector keeps a history of (mode, owner, hash, small text).
    public var watchPaths: [String] = ["/etc"]
    /// Trees the `files` collector scans every 15 minutes for set-user-ID and set-group-ID files.
    public var suidPaths: [String] = CollectorConfig.defaultSUIDPaths
    /// Where SUID files are looked for by default: program directories and the places anyone can write to.
    public static let defaultSUIDPaths = ["/usr/bin", "/usr/sbin", "/usr/local", "/usr/lib", "/usr/libexec", "/opt", "/home", "/srv", "/tmp", "/var/tmp", "/dev/shm"]
    public init(backupPaths: [String] = [], extraSecretWords: [String] = [], processSeriesMinAge: Int64 = 10_000, textfileDirectory: String? = nil,
                watchPaths: [String] = ["/etc"], suidPaths: [String] = CollectorConfig.defaultSUIDPaths) {
        self.watchPaths = watchPaths
        self.suidPaths = suidPaths
        self.backupPaths = backupPaths
        self.textfileDirectory = textfileDirectory
        self.extraSecretWords = extraSecretWords
        self.processSeriesMinAge = processSeriesMinAge
    }
}

extension CollectContext {
    /// A small sysfs or procfs file's text without its trailing newlines, or nil when it cannot be read.
    func text(_ path: String) -> String? { reader.read(path).map { String($0.trimmingSuffixNewlines) } }
    /// A small file holding one number, or nil when it is absent or not a number.
    func number(_ path: String) -> Double? { text(path).flatMap { Double($0) } }
    /// The entries of a directory in byte order, or nil when it cannot be listed.
    func entries(_ path: String) -> [String]? { reader.list(path)?.sorted() }
}
