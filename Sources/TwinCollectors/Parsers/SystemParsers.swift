/// One installed package from the dpkg status database.
public struct InstalledPackage: Sendable, Equatable {
    public var name: String
    public var version: String
    public var architecture: String
}

/// Parses `/var/lib/dpkg/status`: paragraphs separated by blank lines; only packages whose Status ends in
/// `installed` are returned.
public func parseDpkgStatus(_ text: String) -> [InstalledPackage] {
    var out: [InstalledPackage] = []
    var name = "", version = "", arch = "", status = ""
    func flush() {
        if !name.isEmpty, status.hasSuffix(" installed") {
            out.append(InstalledPackage(name: name, version: version, architecture: arch))
        }
        name = ""; version = ""; arch = ""; status = ""
    }
    forEachLine(text) { line in
        if line.isEmpty { flush() }
        else if line.first == " " || line.first == "\t" { return }
        else if let v = line.dropPrefix("Package: ") { name = String(v) }
        else if let v = line.dropPrefix("Version: ") { version = String(v) }
        else if let v = line.dropPrefix("Architecture: ") { arch = String(v) }
        else if let v = line.dropPrefix("Status: ") { status = String(v) }
    }
    flush()
    return out
}

/// One logged-in session from utmp.
public struct LoginSession: Sendable, Equatable {
    public var user: String
    public var line: String
    public var host: String
    public var pid: Int32
    public var loginTime: Int64
}

/// Parses a glibc utmp file (384-byte records on Linux); only USER_PROCESS records (type 7) are sessions.
/// A truncated trailing record is ignored.
public func parseUtmp(_ bytes: UnsafeBufferPointer<UInt8>) -> [LoginSession] {
    let size = 384
    var out: [LoginSession] = []
    var off = 0
    func i32(_ o: Int) -> Int32 {
        Int32(bitPattern: UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24)
    }
    func str(_ o: Int, _ len: Int) -> String {
        var end = o
        while end < o + len, bytes[end] != 0 { end += 1 }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[o..<end]), as: UTF8.self)
    }
    while off + size <= bytes.count {
        if UInt16(bytes[off]) | UInt16(bytes[off + 1]) << 8 == 7 {
            out.append(LoginSession(user: str(off + 44, 32), line: str(off + 8, 32), host: str(off + 76, 256),
                                    pid: i32(off + 4), loginTime: Int64(i32(off + 340)) * 1000 + Int64(i32(off + 344)) / 1000))
        }
        off += size
    }
    return out
}

/// Parses `os-release`: `KEY=value` with optional quotes.
public func parseOSRelease(_ text: String) -> [String: String] {
    var out: [String: String] = [:]
    for line in lines(text) where !line.hasPrefix("#") {
        guard let eq = line.firstIndex(of: "=") else { continue }
        var v = line[line.index(after: eq)...]
        if v.count >= 2, let q = v.first, q == "\"" || q == "'", v.last == q { v = v.dropFirst().dropLast() }
        out[String(line[..<eq])] = String(v)
    }
    return out
}

/// The CPU model name and logical CPU count from `/proc/cpuinfo`.
public func parseCPUInfo(_ text: String) -> (model: String?, count: Int) {
    var model: String?
    var hardware: String?
    var implementer: String?, part: String?
    var count = 0
    for line in lines(text) {
        // `processor : N` per CPU on every architecture (old ARMv7 kernels also print `Processor : NAME`).
        if line.hasPrefix("processor") { count += 1; continue }
        guard let colon = line.firstIndex(of: ":") else { continue }
        let name = line[..<colon].trimmingSpaces, value = String(line[line.index(after: colon)...].trimmingSpaces)
        switch name {
        case "model name", "Model", "cpu model", "Processor": if model == nil, !value.isEmpty { model = value }
        case "Hardware": hardware = value
        case "CPU implementer": if implementer == nil { implementer = value }
        case "CPU part": if part == nil { part = value }
        default: break
        }
    }
    // ARMv8 prints no model name: the core from its implementer and part, else the board (`Hardware`).
    if model == nil, let implementer, let part { model = armCoreName(implementer: implementer, part: part) }
    return (model ?? hardware, count)
}

/// The name of an ARM core from /proc/cpuinfo's `CPU implementer` and `CPU part` (as the kernel prints
/// them, hex), for the cores common in servers and appliances; otherwise the two codes.
func armCoreName(implementer: String, part: String) -> String {
    let parts: [String: [String: String]] = [
        "0x41": ["0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57", "0xd08": "Cortex-A72",
                 "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76", "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77",
                 "0xd40": "Neoverse-V1", "0xd41": "Cortex-A78", "0xd49": "Neoverse-N2", "0xd4f": "Neoverse-V2", "0xc07": "Cortex-A7",
                 "0xc09": "Cortex-A9", "0xc0f": "Cortex-A15"],
        "0x61": [:], "0x51": [:], "0x48": ["0xd01": "TaiShan v110"], "0x43": ["0x0af": "ThunderX2"], "0xc0": ["0xac3": "Ampere-1"],
    ]
    let vendors = ["0x41": "ARM", "0x61": "Apple", "0x51": "Qualcomm", "0x48": "HiSilicon", "0x43": "Cavium", "0xc0": "Ampere", "0x4e": "NVIDIA"]
    let i = implementer.lowercased(), p = part.lowercased()
    if let core = parts[i]?[p] { return "\(vendors[i] ?? i) \(core)" }
    return "\(vendors[i] ?? "implementer \(i)") part \(p)"
}

/// One systemd unit as `systemctl list-units --all --plain --no-legend --no-pager` prints it.
public struct SystemdUnit: Sendable, Equatable {
    public var name: String
    public var load: String
    public var active: String
    public var sub: String
    public var description: String
}

/// Parses the output of `systemctl list-units --all --plain --no-legend --no-pager`.
public func parseSystemctlUnits(_ text: String) -> [SystemdUnit] {
    var out: [SystemdUnit] = []
    for line in lines(text) {
        var f = line.fields
        if let first = f.first, first == "●" || first == "*" { f.removeFirst() }
        guard f.count >= 4, f[0].contains(".") else { continue }
        out.append(SystemdUnit(name: String(f[0]), load: String(f[1]), active: String(f[2]), sub: String(f[3]),
                               description: f.dropFirst(4).joined(separator: " ")))
    }
    return out
}
