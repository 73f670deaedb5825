/// One `/proc/diskstats` line: device identity and its counters (11, 15 or 17 of them by kernel version).
public struct DiskStatsLine: Sendable, Equatable {
    public var major: Int
    public var minor: Int
    public var device: String
    public var counters: [Double]
}

/// Parses `/proc/diskstats`; lines with fewer than 14 fields or non-numeric counters are skipped.
public func parseDiskstats(_ text: String) -> [DiskStatsLine] {
    var out: [DiskStatsLine] = []
    for line in lines(text) {
        let f = line.fields
        guard f.count >= 14, let major = Int(f[0]), let minor = Int(f[1]) else { continue }
        let nums = f[3...].compactMap { Double($0) }
        guard nums.count == f.count - 3 else { continue }
        out.append(DiskStatsLine(major: major, minor: minor, device: String(f[2]), counters: nums))
    }
    return out
}

/// One line of `/proc/PID/mountinfo`.
public struct MountInfo: Sendable, Equatable {
    public var mountID: Int
    public var parentID: Int
    public var majorMinor: String
    public var root: String
    public var mountPoint: String
    public var options: String
    public var fsType: String
    public var source: String
    public var superOptions: String

    /// Whether the mount is read-only (per-mount `ro` option).
    public var isReadOnly: Bool { options.split(separator: ",").contains("ro") }
}

/// Parses mountinfo; malformed lines (no ` - ` separator, too few fields) are skipped.
public func parseMountinfo(_ text: String) -> [MountInfo] {
    var out: [MountInfo] = []
    for line in lines(text) {
        let f = line.split(separator: " ", omittingEmptySubsequences: true)
        guard f.count >= 10, let sep = f.firstIndex(of: "-"), sep >= 6, sep + 2 < f.count,
              let id = Int(f[0]), let parent = Int(f[1]) else { continue }
        out.append(MountInfo(
            mountID: id, parentID: parent, majorMinor: String(f[2]),
            root: unescapeOctal(f[3]), mountPoint: unescapeOctal(f[4]), options: String(f[5]),
            fsType: String(f[sep + 1]), source: unescapeOctal(f[sep + 2]),
            superOptions: sep + 3 < f.count ? String(f[sep + 3]) : ""))
    }
    return out
}

/// Undoes the kernel's `\040`-style octal escapes in mount paths.
func unescapeOctal(_ s: Substring) -> String {
    guard s.contains("\\") else { return String(s) }
    var bytes: [UInt8] = []
    let u = Array(s.utf8)
    var i = 0
    while i < u.count {
        if u[i] == 92, i + 3 < u.count,
           (48...55).contains(u[i + 1]), (48...55).contains(u[i + 2]), (48...55).contains(u[i + 3]) {
            bytes.append((u[i + 1] - 48) * 64 + (u[i + 2] - 48) * 8 + (u[i + 3] - 48))
            i += 4
        } else {
            bytes.append(u[i])
            i += 1
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}
