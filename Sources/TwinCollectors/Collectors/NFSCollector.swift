import TwinCore

/// node_exporter's nfs collector: the NFS client's RPC statistics (`/proc/net/rpc/nfs`): packets and
/// connections, RPCs, retransmissions and credential refreshes, and requests per protocol version and
/// operation.
public final class NFSCollector: Collector {
    public let name = "nfs"
    /// The operations of each `procN` line, in the kernel's order.
    static let operations: [(proto: String, line: String, names: [String])] = [
        ("2", "proc2", ["Null", "GetAttr", "SetAttr", "Root", "Lookup", "ReadLink", "Read", "WrCache", "Write", "Create",
                        "Remove", "Rename", "Link", "SymLink", "MkDir", "RmDir", "ReadDir", "FsStat"]),
        ("3", "proc3", ["Null", "GetAttr", "SetAttr", "Lookup", "Access", "ReadLink", "Read", "Write", "Create", "MkDir",
                        "SymLink", "MkNod", "Remove", "RmDir", "Rename", "Link", "ReadDir", "ReadDirPlus", "FsStat", "FsInfo",
                        "PathConf", "Commit"]),
        ("4", "proc4", ["Null", "Read", "Write", "Commit", "Open", "OpenConfirm", "OpenNoattr", "OpenDowngrade", "Close",
                        "Setattr", "FsInfo", "Renew", "SetClientID", "SetClientIDConfirm", "Lock", "Lockt", "Locku", "Access",
                        "Getattr", "Lookup", "LookupRoot", "Remove", "Rename", "Link", "Symlink", "Create", "Pathconf", "StatFs",
                        "ReadLink", "ReadDir", "ServerCaps", "DelegReturn", "GetACL", "SetACL", "FsLocations", "ReleaseLockowner",
                        "Secinfo", "FsidPresent", "ExchangeID", "CreateSession", "DestroySession", "Sequence", "GetLeaseTime",
                        "ReclaimComplete", "GetDeviceInfo", "LayoutGet", "LayoutCommit", "LayoutReturn", "SecinfoNoName",
                        "TestStateID", "FreeStateID", "GetDeviceList", "BindConnToSession", "DestroyClientID", "Seek",
                        "Allocate", "DeAllocate", "LayoutStats", "Clone"]),
    ]
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        guard let text = ctx.reader.read(ctx.paths.proc("net/rpc/nfs")) else { return .noData("no NFS client statistics") }
        let stats = parseRPCStats(text)
        if let net = stats["net"], net.count >= 4 {
            ctx.observation.counter("node_nfs_packets_total", Labels(["protocol": "udp"]), net[1])
            ctx.observation.counter("node_nfs_packets_total", Labels(["protocol": "tcp"]), net[2])
            ctx.observation.counter("node_nfs_connections_total", .empty, net[3])
        }
        if let rpc = stats["rpc"], rpc.count >= 3 {
            ctx.observation.counter("node_nfs_rpcs_total", .empty, rpc[0])
            ctx.observation.counter("node_nfs_rpc_retransmissions_total", .empty, rpc[1])
            ctx.observation.counter("node_nfs_rpc_authentication_refreshes_total", .empty, rpc[2])
        }
        for (proto, line, names) in Self.operations {
            guard let values = stats[line] else { continue }
            // Older kernels count fewer operations; the missing ones are zero, as node_exporter reports them.
            for (i, method) in names.enumerated() {
                ctx.observation.counter("node_nfs_requests_total", Labels(["method": method, "proto": proto]), i < values.count ? values[i] : 0)
            }
        }
        return .ok
    }
}
