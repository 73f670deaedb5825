/// Parsers for the kernel's storage-stack tables: software RAID (`/proc/mdstat`), ZFS kstats
/// (`/proc/spl/kstat/zfs`), XFS statistics (`/proc/fs/xfs/stat`, `/sys/fs/xfs/*/stats/stats`) and the
/// NFS RPC statistics (`/proc/net/rpc/nfs`, `nfsd`). Pure functions of the text; malformed lines and
/// devices are skipped.

/// One software RAID device of `/proc/mdstat`.
public struct MDDevice: Sendable, Equatable {
    public var name: String
    /// `active`, `inactive`, `recovering`, `resync` or `check`.
    public var state: String
    public var disksActive: Double
    /// Disks the array needs ("[n/m]": n); 0 for an inactive array.
    public var disksRequired: Double
    public var disksFailed: Double
    public var disksSpare: Double
    public var blocks: Double
    /// Blocks in sync: all of them unless a recovery, resync or check is running (0 while one is pending).
    public var blocksSynced: Double
}

/// `/proc/mdstat`: a device line (`md0 : active raid1 sda1[0] sdb1[1](F)`) followed by a status line
/// (`1024 blocks [2/1] [U_]`) and optional bitmap and progress lines.
public func parseMDStat(_ text: String) -> [MDDevice] {
    let all = text.split(separator: "\n", omittingEmptySubsequences: false)
    var out: [MDDevice] = []
    for (i, line) in all.enumerated() {
        guard let first = line.first, first != " ", first != "\t", !line.hasPrefix("Personalities"), !line.hasPrefix("unused") else { continue }
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 3, fields[1] == ":", i + 1 < all.count else { continue }
        let statusFields = all[i + 1].split(separator: " ", omittingEmptySubsequences: true)
        guard let blocks = statusFields.first.flatMap({ Double($0) }) else { continue }
        var device = MDDevice(name: String(fields[0]), state: String(fields[2]), disksActive: 0, disksRequired: 0,
                              disksFailed: Double(line.count(of: "(F)")), disksSpare: Double(line.count(of: "(S)")),
                              blocks: blocks, blocksSynced: blocks)
        if line.contains("raid0") || line.contains("linear") {
            let disks = Double(line.filter { $0 == "[" }.count)
            device.disksActive = disks
            device.disksRequired = disks
        } else if device.state != "inactive" {
            // "[n/m] [UU_]": n disks required, m active.
            guard let counts = statusFields.first(where: { $0.hasPrefix("[") && $0.hasSuffix("]") && $0.contains("/") }) else { continue }
            let parts = counts.dropFirst().dropLast().split(separator: "/")
            guard parts.count == 2, let total = Double(parts[0]), let active = Double(parts[1]) else { continue }
            device.disksRequired = total
            device.disksActive = active
        }
        var syncIndex = i + 2
        if syncIndex < all.count, all[syncIndex].contains("bitmap") { syncIndex += 1 }
        if syncIndex < all.count {
            let sync = all[syncIndex]
            let recovering = sync.contains("recovery"), resyncing = sync.contains("resync"), checking = sync.contains("check")
            if recovering || resyncing || checking {
                device.state = recovering ? "recovering" : checking ? "check" : "resync"
                if sync.contains("PENDING") || sync.contains("DELAYED") {
                    device.blocksSynced = 0
                } else if let open = sync.firstIndex(of: "("), let slash = sync[open...].firstIndex(of: "/"),
                          let done = Double(sync[sync.index(after: open)..<slash]) {
                    device.blocksSynced = done
                }
            }
        }
        out.append(device)
    }
    return out
}

extension Substring {
    func count(of needle: String) -> Int {
        var n = 0, rest = self[...]
        while !rest.isEmpty {
            if rest.starts(with: needle) { n += 1; rest = rest.dropFirst(needle.count) } else { rest = rest.dropFirst() }
        }
        return n
    }
}

/// A ZFS "named" kstat file (`/proc/spl/kstat/zfs/arcstats`, `objset-N`, ...): a header line, a
/// `name type data` line, then one row per statistic. Numeric rows (types 1–6) are returned by name;
/// string rows (type 7) in `strings`.
public func parseZFSKstat(_ text: String) -> (numbers: [(name: String, value: Double)], strings: [String: String]) {
    var numbers: [(name: String, value: Double)] = [], strings: [String: String] = [:]
    for line in lines(text).dropFirst(2) {
        let f = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard f.count == 3, let type = Int(f[1]) else { continue }
        let value = f[2].trimmingSpaces
        if type == 7 {
            strings[String(f[0])] = String(value)
        } else if (1...6).contains(type), let v = Double(value) {
            numbers.append((String(f[0]), v))
        }
    }
    return (numbers, strings)
}

/// A ZFS "io" kstat (`/proc/spl/kstat/zfs/<pool>/io`): a header line, a line of names and a line of values.
public func parseZFSIOKstat(_ text: String) -> [(name: String, value: Double)] {
    let all = lines(text)
    guard all.count >= 3 else { return [] }
    let names = all[1].split(separator: " ", omittingEmptySubsequences: true)
    let values = all[2].split(separator: " ", omittingEmptySubsequences: true)
    guard names.count == values.count else { return [] }
    return zip(names, values).compactMap { n, v in Double(v).map { (String(n), $0) } }
}

/// XFS statistics (`/sys/fs/xfs/<device>/stats/stats`): each line is a section name and its counters.
/// Returns the counters by section; lines with a non-numeric counter are skipped.
public func parseXFSStats(_ text: String) -> [String: [Double]] {
    var out: [String: [Double]] = [:]
    for line in lines(text) {
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        guard f.count >= 2 else { continue }
        let values = f.dropFirst().compactMap { Double($0) }
        guard values.count == f.count - 1 else { continue }
        out[String(f[0])] = values
    }
    return out
}

/// `/proc/net/rpc/nfs` and `/proc/net/rpc/nfsd`: each line is a section name and its numbers. For the
/// `procN` lines the first number is the count of the ones that follow, which is dropped. Fields that
/// are not numbers end their line.
public func parseRPCStats(_ text: String) -> [String: [Double]] {
    var out: [String: [Double]] = [:]
    for line in lines(text) {
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        guard f.count >= 2 else { continue }
        var values: [Double] = []
        for field in f.dropFirst() {
            guard let v = Double(field) else { break }
            values.append(v)
        }
        if f[0].hasPrefix("proc"), !values.isEmpty { values.removeFirst() }
        out[String(f[0])] = values
    }
    return out
}

/// bcache's human-readable sizes (`20.4G`, `427.5k`, `1.1M/sec`, `512`) in bytes, read as the bcache
/// tools and node_exporter read them: the digits after the point count in thousandths of the unit, scaled
/// to the next smaller binary unit (`1.1M` = 1 MiB + 100 KiB).
public func parseBcacheSize(_ text: Substring) -> Double? {
    var s = text
    if let slash = s.firstIndex(of: "/") { s = s[..<slash] }
    var unit = 1.0
    if let last = s.last, let power = "kMGTPEZY".firstIndex(of: last).map({ "kMGTPEZY".distance(from: "kMGTPEZY".startIndex, to: $0) + 1 }) {
        unit = pow1024(power)
        s = s.dropLast()
    }
    let parts = s.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count <= 2, let whole = Double(parts[0]) else { return nil }
    var value = whole * unit
    if parts.count == 2 {
        let digits = parts[1].prefix(3)
        guard !digits.isEmpty, let f = Double(digits.padding(toLength: 3)) else { return nil }
        value += f * unit / 1024
    }
    return value
}

private func pow1024(_ n: Int) -> Double { (0..<n).reduce(1.0) { acc, _ in acc * 1024 } }

private extension Substring {
    func padding(toLength n: Int) -> String { String(self) + String(repeating: "0", count: Swift.max(0, n - count)) }
}
