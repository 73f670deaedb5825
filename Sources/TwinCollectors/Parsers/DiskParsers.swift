/// One `/proc/diskstats` line: device identity and its counters (11, 15 or 17 of them by kernel version).
public struct DiskStatsLine: Sendable, Equatable {
    public var major: Int
    public var minor: Int
    public var device: String
    public var counters: [Double]
}

/// Visits each `/proc/diskstats` line with 14+ fields: index, device name range, and its counters.
func scanDiskstats(_ s: ByteScanner, _ visit: (Int, Range<Int>, Int, Int, UnsafeBufferPointer<Double>) -> Void) {
    var sc = s
    var f: [Range<Int>] = []
    f.reserveCapacity(24)
    var nums = [Double](repeating: 0, count: 24)
    var index = 0
    while let line = sc.nextLine() {
        sc.fields(line, into: &f)
        guard f.count >= 14, f.count <= 27, let major = s.number(f[0]).flatMap({ Int(exactly: $0) }),
              let minor = s.number(f[1]).flatMap({ Int(exactly: $0) }) else { continue }
        var ok = true
        for k in 3..<f.count { guard let v = s.number(f[k]) else { ok = false; break }; nums[k - 3] = v }
        guard ok else { continue }
        nums.withUnsafeBufferPointer { visit(index, f[2], major, minor, UnsafeBufferPointer(rebasing: $0[0..<(f.count - 3)])) }
        index += 1
    }
}

/// Parses `/proc/diskstats`; lines with fewer than 14 fields or non-numeric counters are skipped.
public func parseDiskstats(_ text: String) -> [DiskStatsLine] {
    text.withBytes { b in
        var out: [DiskStatsLine] = []
        let s = ByteScanner(b)
        scanDiskstats(s) { _, name, major, minor, c in out.append(DiskStatsLine(major: major, minor: minor, device: s.string(name), counters: Array(c))) }
        return out
    }
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
