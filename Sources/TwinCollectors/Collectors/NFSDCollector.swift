import TwinCore

/// node_exporter's nfsd collector: the NFS server's statistics (`/proc/net/rpc/nfsd`): reply cache,
/// stale file handles, disk I/O, threads, read-ahead cache, packets and connections, RPCs and their
/// errors, and requests per protocol version and operation.
public final class NFSDCollector: Collector {
    public let name = "nfsd"
    /// The operations of `proc2` and `proc3` after `Null` (which is not reported), in the kernel's order.
    static let v2 = ["GetAttr", "SetAttr", "Root", "Lookup", "ReadLink", "Read", "WrCache", "Write", "Create", "Remove",
                     "Rename", "Link", "SymLink", "MkDir", "RmDir", "ReadDir", "FsStat"]
    static let v3 = ["GetAttr", "SetAttr", "Lookup", "Access", "ReadLink", "Read", "Write", "Create", "MkDir", "SymLink",
                     "MkNod", "Remove", "RmDir", "Rename", "Link", "ReadDir", "ReadDirPlus", "FsStat", "FsInfo", "PathConf", "Commit"]
    /// NFSv4 operations by their number in `proc4ops` (nil: not reported).
    static let v4: [String?] = [nil, nil, nil, "Access", "Close", "Commit", "Create", "DelegPurge", "DelegReturn", "GetAttr",
                                "GetFH", "Link", "Lock", "Lockt", "Locku", "Lookup", "LookupRoot", "Nverify", "Open", "OpenAttr",
                                "OpenConfirm", "OpenDgrd", "PutFH", nil, nil, "Read", "ReadDir", "ReadLink", "Remove", "Rename",
                                "Renew", "RestoreFH", "SaveFH", "SecInfo", "SetAttr", "SetClientID", "SetClientIDConfirm",
                                "Verify", "Write", "RelLockOwner"]
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        guard let text = ctx.reader.read(ctx.paths.proc("net/rpc/nfsd")) else { return .noData("no NFS server statistics") }
        let s = parseRPCStats(text)
        func first(_ line: String, _ count: Int) -> [Double]? { s[line].flatMap { $0.count >= count ? $0 : nil } }
        if let rc = first("rc", 3) {
            ctx.observation.counter("node_nfsd_reply_cache_hits_total", .empty, rc[0])
            ctx.observation.counter("node_nfsd_reply_cache_misses_total", .empty, rc[1])
            ctx.observation.counter("node_nfsd_reply_cache_nocache_total", .empty, rc[2])
        }
        if let fh = first("fh", 1) { ctx.observation.counter("node_nfsd_file_handles_stale_total", .empty, fh[0]) }
        if let io = first("io", 2) {
            ctx.observation.counter("node_nfsd_disk_bytes_read_total", .empty, io[0])
            ctx.observation.counter("node_nfsd_disk_bytes_written_total", .empty, io[1])
        }
        if let th = first("th", 1) { ctx.observation.add("node_nfsd_server_threads", .empty, th[0]) }
        if let ra = first("ra", 2) {
            ctx.observation.add("node_nfsd_read_ahead_cache_size_blocks", .empty, ra[0])
            ctx.observation.counter("node_nfsd_read_ahead_cache_not_found_total", .empty, ra[ra.count - 1])
        }
        if let net = first("net", 4) {
            ctx.observation.counter("node_nfsd_packets_total", Labels(["proto": "udp"]), net[1])
            ctx.observation.counter("node_nfsd_packets_total", Labels(["proto": "tcp"]), net[2])
            ctx.observation.counter("node_nfsd_connections_total", .empty, net[3])
        }
        if let rpc = first("rpc", 5) {
            ctx.observation.counter("node_nfsd_server_rpcs_total", .empty, rpc[0])
            ctx.observation.counter("node_nfsd_rpc_errors_total", Labels(["error": "fmt"]), rpc[2])
            ctx.observation.counter("node_nfsd_rpc_errors_total", Labels(["error": "auth"]), rpc[3])
            ctx.observation.counter("node_nfsd_rpc_errors_total", Labels(["error": "cInt"]), rpc[4])
        }
        func requests(_ proto: String, _ names: [String?], _ values: [Double]) {
            for (i, method) in names.enumerated() {
                guard let method else { continue }
                ctx.observation.counter("node_nfsd_requests_total", Labels(["method": method, "proto": proto]), i < values.count ? values[i] : 0)
            }
        }
        if let p = s["proc2"] { requests("2", Self.v2, Array(p.dropFirst())) }
        if let p = s["proc3"] { requests("3", Self.v3, Array(p.dropFirst())) }
        if let p = s["proc4ops"] { requests("4", Self.v4, p) }
        if let w = first("wdeleg_getattr", 1) {
            ctx.observation.counter("node_nfsd_requests_total", Labels(["method": "WdelegGetattr", "proto": "4"]), w[0])
        }
        return .ok
    }
}
