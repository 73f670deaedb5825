import Foundation
import Testing
@testable import TwinCollectors
import TwinCore

/// Parsers on files captured from real hosts (this project's VM, prometheus/procfs and node_exporter
/// fixtures) and on malformed variants.
@Suite struct ParserTests {
    @Test func procStatFromVM() throws {
        let s = parseProcStat(try Fixtures.vmText("proc/stat"))
        #expect(s.cpus.count == 3)
        #expect(s.cpus[0].index == nil)
        #expect(s.cpus[1].index == 0)
        #expect(s.cpus[1].ticks[0] == 17311)
        #expect(s.cpus[2].ticks[3] == 50558)
        #expect(s.contextSwitches == 440742)
        #expect(s.bootTime == 1795913784)
        #expect(s.forks == 12284)
        #expect(s.procsRunning == 1)
        #expect(s.procsBlocked == 0)
    }

    @Test func procStatMalformed() {
        #expect(parseProcStat("").cpus.isEmpty)
        #expect(parseProcStat("cpu0 1 2\ncpuX 1 2 3 4 5\ncpu1 a b c d e\nctxt\nbtime x\n").cpus.isEmpty)
        let truncated = parseProcStat("cpu0 10 20 30")
        #expect(truncated.cpus.isEmpty, "fewer than four time fields is not a cpu line")
        let short = parseProcStat("cpu3 10 20 30 40 50\n")
        #expect(short.cpus.first?.ticks == [10, 20, 30, 40, 50, 0, 0, 0, 0, 0])
        #expect(parseProcStat("\u{0}\u{1}garbage\n\n").cpus.isEmpty)
    }

    @Test func meminfoFromVM() throws {
        let m = parseMeminfo(try Fixtures.vmText("proc/meminfo"))
        let byName = Dictionary(uniqueKeysWithValues: m.map { ($0.name, $0) })
        #expect(byName["MemTotal"]?.value == Double(24683652 * 1024))
        #expect(byName["MemTotal"]?.isBytes == true)
        #expect(byName["Active_anon"]?.value == Double(1508 * 1024))
        #expect(byName["HugePages_Total"]?.isBytes == false)
        #expect(parseMeminfo("MemTotal: abc kB\nBroken\n: 12 kB\n").isEmpty)
    }

    @Test func loadavgAndPressure() throws {
        let l = try #require(parseLoadavg(try Fixtures.vmText("proc/loadavg")))
        #expect(l.0 == 0.32 && l.1 == 0.54 && l.2 == 0.36)
        #expect(parseLoadavg("0.1 0.2") == nil)
        #expect(parseLoadavg("") == nil)
        let p = parsePressure(try Fixtures.vmText("proc/pressure/cpu"))
        #expect(p.some == 67114008)
        #expect(p.full == 0)
        #expect(parsePressure("some avg10=1 total=\nfull garbage").some == nil)
    }

    @Test func netDevFromVM() throws {
        let devs = parseNetDev(try Fixtures.vmText("proc/net/dev"))
        let lo = try #require(devs.first { $0.device == "lo" })
        #expect(lo.receive[0] == 7685)
        #expect(lo.receive[1] == 49)
        #expect(lo.transmit[0] == 7685)
        #expect(!devs.contains { $0.device.contains("|") })
        #expect(parseNetDev("  eth0: 1 2 3\n").isEmpty, "truncated interface line is skipped")
    }

    @Test func snmpAndNetstat() throws {
        let snmp = Dictionary(parseSNMP(try Fixtures.vmText("proc/net/snmp")), uniquingKeysWith: { a, _ in a })
        #expect(snmp["Tcp_ActiveOpens"] != nil)
        #expect(snmp["Ip_Forwarding"] != nil)
        let netstat = Dictionary(parseSNMP(try Fixtures.vmText("proc/net/netstat")), uniquingKeysWith: { a, _ in a })
        #expect(netstat["TcpExt_ListenDrops"] != nil)
        #expect(parseSNMP("Tcp: A B\nUdp: 1 2\n").isEmpty, "mismatched header and value lines are skipped")
        #expect(parseSNMP("Tcp: A B\nTcp: 1\n").isEmpty, "short value line is skipped")
        let six = Dictionary(parseSNMP6("Ip6InReceives 12\nUdpLite6InErrors 3\nbogus\n"), uniquingKeysWith: { a, _ in a })
        #expect(six == ["Ip6_InReceives": 12, "UdpLite6_InErrors": 3])
    }

    @Test func sockstat() throws {
        let s = Dictionary(parseSockstat(try Fixtures.vmText("proc/net/sockstat")), uniquingKeysWith: { a, _ in a })
        #expect(s["sockets_used"] == 9)
        #expect(s["TCP_inuse"] == 2)
        #expect(s["TCP_tw"] == 2)
        #expect(s["FRAG_memory"] == 0)
    }

    /// The UDP in-use counts that decide whether the UDP hash is dumped, read from the bytes.
    @Test func sockstatInUseCounts() throws {
        func inUse(_ text: String, _ line: StaticString) -> Double? {
            Array(text.utf8).withUnsafeBufferPointer { sockstatInUse($0, line: line) }
        }
        let v4 = try Fixtures.vmText("proc/net/sockstat"), v6 = try Fixtures.vmText("proc/net/sockstat6")
        #expect(inUse(v4, "UDP:") == 0 && inUse(v4, "TCP:") == 2 && inUse(v4, "UDPLITE:") == 0)
        #expect(inUse(v6, "UDP6:") == Dictionary(parseSockstat(v6), uniquingKeysWith: { a, _ in a })["UDP6_inuse"])
        #expect(inUse("sockets: used 9\nUDP: inuse 17 mem 3\n", "UDP:") == 17)
        // Malformed or missing: nil, so the caller dumps.
        #expect(inUse("UDPLITE: inuse 4\n", "UDP:") == nil, "a longer name is another protocol")
        #expect(inUse("UDP: mem 3\n", "UDP:") == nil)
        #expect(inUse("UDP: inuse x\n", "UDP:") == nil)
        #expect(inUse("UDP: inuse\n", "UDP:") == nil)
        #expect(inUse("", "UDP:") == nil)
    }

    /// Every in-use count, as the sockets collector compares them at each tick without the tracepoint.
    @Test func sockstatEveryInUseCount() throws {
        func counts(_ text: String) -> [Double] {
            var out: [Double] = []
            Array(text.utf8).withUnsafeBufferPointer { everySockstatInUse($0, into: &out) }
            return out
        }
        for file in ["proc/net/sockstat", "proc/net/sockstat6"] {
            let text = try Fixtures.vmText(file)
            let expected = parseSockstat(text).filter { $0.0.hasSuffix("_inuse") }.map(\.1)
            #expect(!expected.isEmpty)
            #expect(counts(text) == expected, "\(file)")
        }
        #expect(counts("TCP: inuse 5 orphan 0\nUDP: inuse 2 mem 1\n") == [5, 2])
        // Malformed lines are left out, the rest kept.
        #expect(counts("TCP inuse 5\nUDP: inuse x\nRAW: inuse\nFRAG: inuse 1 memory\nUDP6: inuse 3\n") == [3])
        #expect(counts("") == [])
        // The named line's count, which the same read hands to the UDP dumps: as `sockstatInUse` reads it.
        func reported(_ text: String, _ line: StaticString) -> Double? {
            var out: [Double] = []
            return Array(text.utf8).withUnsafeBufferPointer { everySockstatInUse($0, into: &out, reporting: line) }
        }
        let v4 = try Fixtures.vmText("proc/net/sockstat"), v6 = try Fixtures.vmText("proc/net/sockstat6")
        for (text, line) in [(v4, "UDP:"), (v4, "TCP:"), (v6, "UDP6:"), ("UDPLITE: inuse 4\nUDP: inuse 7\n", "UDP:"),
                             ("UDP: inuse x\n", "UDP:"), ("UDP: mem 3\n", "UDP:"), ("", "UDP:")] as [(String, StaticString)] {
            #expect(reported(text, line) == Array(text.utf8).withUnsafeBufferPointer { sockstatInUse($0, line: line) }, "\(line) in \(text)")
        }
        #expect(reported("UDPLITE: inuse 4\nUDP: inuse 7\n", "UDP:") == 7)
    }

    @Test func diskstatsFromVM() throws {
        let d = parseDiskstats(try Fixtures.vmText("proc/diskstats"))
        #expect(d.first?.device == "loop0")
        #expect(d.allSatisfy { $0.counters.count >= 11 })
        #expect(d.contains { $0.device == "vda" })
        #expect(parseDiskstats("8 0 sda 1 2 3\n").isEmpty)
        #expect(parseDiskstats("8 0 sda 1 2 3 4 5 6 7 8 9 10 x\n").isEmpty)
    }

    @Test func diskDeviceFilterMatchesNodeExporter() {
        for excluded in ["loop0", "ram1", "zram0", "sda1", "vda2", "xvda1", "nvme0n1p1", "fd0"] {
            #expect(DiskCollector.isExcluded(excluded), "\(excluded)")
        }
        for kept in ["sda", "vda", "nvme0n1", "dm-0", "md0", "sr0", "mmcblk0"] {
            #expect(!DiskCollector.isExcluded(kept), "\(kept)")
        }
    }

    @Test func mountinfo() throws {
        let m = parseMountinfo(try Fixtures.vmText("proc/self/mountinfo"))
        #expect(m.contains { $0.mountPoint == "/proc" && $0.fsType == "proc" })
        #expect(m.contains { $0.mountPoint == "/" })
        let odd = parseMountinfo("36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue\nbroken line\n")
        #expect(odd.count == 1)
        #expect(odd[0].mountPoint == "/mnt/with space")
        #expect(odd[0].fsType == "ext3")
        #expect(odd[0].source == "/dev/root")
        #expect(!odd[0].isReadOnly)
        #expect(parseMountinfo("1 2 3:4 / /x ro - ext4 /dev/x ro\n").first?.isReadOnly == true)
    }

    @Test func pidStat() throws {
        let s = try #require(parsePidStat(try Fixtures.vmText("proc/self/stat")))
        #expect(s.comm == "cat")
        #expect(s.state == "R")
        #expect(s.ppid == 12280)
        #expect(s.threads == 1)
        #expect(s.startTicks == 74211)
        #expect(s.rssPages == 389)
        #expect(!s.isKernelThread)
        let weird = try #require(parsePidStat("42 (a) (b) c) S 1 42 42 0 -1 2097216 0 0 0 0 5 6 0 0 20 0 3 0 100 0 0 18446744073709551615"))
        #expect(weird.comm == "a) (b) c")
        #expect(weird.utimeTicks == 5 && weird.stimeTicks == 6)
        #expect(weird.isKernelThread)
        #expect(parsePidStat("12 (x) S 1 2 3") == nil, "truncated stat")
        #expect(parsePidStat("") == nil)
        #expect(parsePidStat("garbage without parens") == nil)
        #expect(parsePidStat("1 (x) S 1 2 3 4 5 6 7 8 9 10 11 zz 13 14 15 16 17 18 19 20 21 22") == nil)
    }

    @Test func socketTables() throws {
        let rows = parseSocketTable(try Fixtures.vmText("proc/net/tcp"))
        #expect(rows.count == 4)
        #expect(rows[0].localAddress == "0.0.0.0" && rows[0].localPort == 2024 && rows[0].state == 10 && rows[0].inode == 107)
        #expect(rows[1].localAddress == "127.0.0.1" && rows[1].localPort == 19977)
        #expect(rows[2].remotePort == 19977 && rows[2].state == 6)
        #expect(parseSocketTable("  0: 0100007F:0016 00000000:0000 0A\n").isEmpty)
        let v6 = parseSocketTable("  sl header\n 1315: 00000000000000000000000000000000:14EB 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000   981        0 21040 2 0000000013726323 0\n 6073: 000080FE00000000FFADE15609667CFE:C781 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 11337031 2 00000000b9256fdd 0\n")
        #expect(v6.count == 2)
        #expect(v6[0].localAddress == "::" && v6[0].localPort == 5355)
        #expect(v6[1].localAddress == "fe80::56e1:adff:fe7c:6609")
        #expect(formatIPv6([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]) == "::1")
        #expect(formatIPv6([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1]) == "::ffff:10.0.0.1")
    }

    /// The TCP state tracepoint's format as this VM's kernel describes it, and perf ring records built on
    /// that layout: an IPv4 and an IPv6 change, a loss, a record of another type, then a truncated one.
    @Test func tcpStateTracepointRecords() throws {
        let fields = parseTracepointFormat(try Fixtures.vmText("sys/kernel/tracing/events/sock/inet_sock_set_state/format"))
        #expect(fields["skaddr"] == TracepointField(offset: 8, size: 8) && fields["saddr_v6"] == TracepointField(offset: 40, size: 16))
        #expect(fields["common_pid"] == TracepointField(offset: 4, size: 4) && fields["ID"] == nil)
        let layout = try #require(TCPStateLayout(fields: fields))
        // A format that lacks a field, or gives it another width, is not read.
        #expect(TCPStateLayout(fields: fields.filter { $0.key != "daddr_v6" }) == nil)
        #expect(TCPStateLayout(fields: fields.merging(["sport": TracepointField(offset: 24, size: 4)]) { $1 }) == nil)
        #expect(parseTracepointFormat("field:int x;\toffset:-4;\tsize:4;\nfield:int y;\toffset:4;\nnot a field\n").isEmpty)

        func raw(old: Int32, new: Int32, family: UInt16, sport: UInt16, dport: UInt16, v4: ([UInt8], [UInt8])?, v6: ([UInt8], [UInt8])?) -> [UInt8] {
            var r = [UInt8](repeating: 0, count: 72)
            func put<T: FixedWidthInteger>(_ v: T, _ at: Int) { withUnsafeBytes(of: v.littleEndian) { for (i, b) in $0.enumerated() { r[at + i] = b } } }
            put(old, 16); put(new, 20); put(sport, 24); put(dport, 26); put(family, 28); put(UInt16(6), 30)
            if let (s, d) = v4 { r.replaceSubrange(32..<36, with: s); r.replaceSubrange(36..<40, with: d) }
            if let (s, d) = v6 { r.replaceSubrange(40..<56, with: s); r.replaceSubrange(56..<72, with: d) }
            return r
        }
        func record(type: UInt32, _ body: [UInt8]) -> [UInt8] {
            var h = [UInt8](repeating: 0, count: 8)
            withUnsafeBytes(of: type.littleEndian) { h.replaceSubrange(0..<4, with: $0) }
            withUnsafeBytes(of: UInt16(8 + body.count).littleEndian) { h.replaceSubrange(6..<8, with: $0) }
            return h + body
        }
        func sample(time: UInt64, _ raw: [UInt8]) -> [UInt8] {
            var body: [UInt8] = []
            withUnsafeBytes(of: time.littleEndian) { body += $0 }
            withUnsafeBytes(of: UInt32(raw.count + 4).littleEndian) { body += $0 } // raw data is padded to 8 bytes
            return record(type: 9, body + raw + [0, 0, 0, 0])
        }
        let loopback6 = [UInt8](repeating: 0, count: 15) + [1]
        var ring = sample(time: 7, raw(old: 2, new: 1, family: 2, sport: 40_000, dport: 22, v4: ([127, 0, 0, 1], [10, 0, 0, 2]), v6: nil))
        ring += sample(time: 9, raw(old: 1, new: 4, family: 10, sport: 8080, dport: 51_000, v4: nil, v6: (loopback6, loopback6)))
        ring += record(type: 2, [0, 0, 0, 0, 0, 0, 0, 1] + [3, 0, 0, 0, 0, 0, 0, 0]) // PERF_RECORD_LOST: id, 3 lost
        ring += record(type: 3, [1, 2, 3, 4, 5, 6, 7, 8]) // another record type: skipped
        let truncated = sample(time: 11, raw(old: 10, new: 7, family: 2, sport: 80, dport: 0, v4: ([0, 0, 0, 0], [0, 0, 0, 0]), v6: nil))
        ring += truncated.prefix(40)
        let changes: [TCPStateChange] = ring.withUnsafeBytes { bytes in
            let (samples, lost) = parsePerfSamples(bytes)
            #expect(samples.count == 2 && lost == 3)
            return samples.compactMap { layout.change(raw: UnsafeRawBufferPointer(rebasing: bytes[$0.raw]), time: $0.time) }
        }
        #expect(changes.count == 2)
        #expect(changes.first == TCPStateChange(time: 7, oldState: 2, newState: 1, family: 2, protocolNumber: 6,
                                                local: ("127.0.0.1", 40_000), remote: ("10.0.0.2", 22)))
        #expect(changes.last.map { ($0.local.address, $0.local.port, $0.remote.port, $0.oldState, $0.newState) } ?? ("", 0, 0, 0, 0) == ("::1", 8080, 51_000, 1, 4))
        // A raw record shorter than the layout is no change; a record that claims more bytes than there are ends the parse.
        #expect([UInt8](repeating: 0, count: 40).withUnsafeBytes { layout.change(raw: $0, time: 0) } == nil)
        #expect(record(type: 9, [UInt8](repeating: 0, count: 30)).prefix(20).withUnsafeBytes { parsePerfSamples($0).samples.isEmpty })
    }

    @Test(.enabled(if: Fixtures.hasSharedData, Comment(rawValue: Fixtures.skipMessage)))
    func procfsFixtureProcess() throws {
        let shared = try #require(Fixtures.sharedData)
        let dir = shared + "/procfs-fixtures/proc/26231"
        let s = try #require(parsePidStat(try String(contentsOfFile: dir + "/stat", encoding: .utf8)))
        #expect(s.comm == "vim" && s.ppid == 5392 && s.utimeTicks == 1677 && s.stimeTicks == 44 && s.startTicks == 82375)
        #expect(parseCmdline(try String(contentsOfFile: dir + "/cmdline", encoding: .utf8)) == ["vim", "test.go", "+10"])
        #expect(parseCmdline("vim\0fïlé\u{301}\0+10\0") == ["vim", "fïlé\u{301}", "+10"])
        #expect(parseCmdline("a\0\0b\0\0") == ["a", "", "b"])
        #expect(parseCmdline("") == [])
        let io = try #require(parsePidIO(try String(contentsOfFile: dir + "/io", encoding: .utf8)))
        #expect(io.rchar == 750339 && io.readBytes == 1024 && io.writeBytes == 2048)
        let tcp6 = parseSocketTable(try String(contentsOfFile: shared + "/procfs-fixtures/proc/net/tcp6", encoding: .utf8))
        #expect(!tcp6.isEmpty)
    }

    /// /proc/PID/cgroup as real hosts write it: the systemd service of a process, or none.
    @Test func systemdUnitFromCgroup() {
        // cgroup v2 (Debian 12, systemd): sshd's and a user session's.
        #expect(parseSystemdUnit("0::/system.slice/ssh.service\n") == "ssh.service")
        #expect(parseSystemdUnit("0::/user.slice/user-1000.slice/session-3.scope\n") == nil)
        #expect(parseSystemdUnit("0::/user.slice/user-1000.slice/user@1000.service/app.slice/dbus.service\n") == "dbus.service")
        // cgroup v1 hybrid (this sandbox's own /proc/self/cgroup, and a systemd host's).
        let sandbox = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/83cbba035f342389ba8c2f0d52c42ed0\n1:cpu:/\n0::/\n"
        #expect(parseSystemdUnit(sandbox) == nil)
        #expect(parseSystemdUnit("12:pids:/system.slice/cron.service\n1:name=systemd:/system.slice/cron.service\n0::/system.slice/cron.service\n") == "cron.service")
        #expect(parseSystemdUnit("1:name=systemd:/system.slice/nginx.service\n") == "nginx.service")
        // Malformed.
        for bad in ["", "garbage", "0::", "x::/a.service", "0:/system.slice/a.service", "0::/.service", "\u{0}\u{1}"] {
            #expect(parseSystemdUnit(bad) == nil, "\(bad.debugDescription)")
        }
    }

    @Test func dpkgStatus() {
        let text = """
        Package: adduser
        Status: install ok installed
        Architecture: all
        Version: 3.134
        Description: add and remove users
         continuation line: Package: fake

        Package: removed-one
        Status: deinstall ok config-files
        Version: 1.0
        Architecture: amd64

        Package: libc6
        Status: install ok installed
        Architecture: amd64
        Version: 2.36-9+deb12u9
        """
        let p = parseDpkgStatus(text)
        #expect(p == [InstalledPackage(name: "adduser", version: "3.134", architecture: "all"),
                      InstalledPackage(name: "libc6", version: "2.36-9+deb12u9", architecture: "amd64")])
        #expect(parseDpkgStatus("").isEmpty)
        #expect(parseDpkgStatus("garbage\n\n\nPackage:\n").isEmpty)
    }

    /// A command line up to 4 KiB is stored whole; a longer one (a linker's list of files) keeps both ends
    /// around a marker with its length and hash, cut between characters.
    @Test func longCommandLinesAreCutInTheMiddle() {
        let short = String(repeating: "a", count: commandLimit)
        #expect(storedCommand(short) == short)
        let files = (0..<20_000).map { "/work/main/.build/release/Module\($0).o" }.joined(separator: " ")
        let link = "/opt/swift/usr/bin/clang -pie " + files + " -o hosttwin"
        let cut = storedCommand(link)
        #expect(cut.utf8.count < commandLimit + 100)
        #expect(cut.hasPrefix(String(link.utf8.prefix(3072))!) && cut.hasSuffix(String(link.utf8.suffix(896))!))
        #expect(cut.contains("[\(link.utf8.count) bytes, \(link.utf8.count - 3072 - 896) cut, sha256 "))
        // The same both ends, another middle: another stored command.
        let other = link.replacingOccurrences(of: "Module10000.o", with: "Module10000.x")
        #expect(storedCommand(other) != cut && storedCommand(link) == cut)
        // Cuts fall between characters: "é" is two bytes, so 3,072 and the tail's start need moving.
        let accents = "x" + String(repeating: "é", count: 5_000)
        let cutAccents = storedCommand(accents)
        #expect(!cutAccents.contains("\u{FFFD}") && cutAccents.hasPrefix("x" + String(repeating: "é", count: 1535)) && cutAccents.hasSuffix("é"))
    }

    @Test func utmpRecords() {
        var bytes = [UInt8](repeating: 0, count: 384 * 2 + 100) // two records and a truncated third
        func put(_ off: Int, _ s: String) { for (i, b) in s.utf8.enumerated() { bytes[off + i] = b } }
        func putI32(_ off: Int, _ v: Int32) { for k in 0..<4 { bytes[off + k] = UInt8(truncatingIfNeeded: v >> (8 * Int32(k))) } }
        bytes[0] = 7 // USER_PROCESS
        putI32(4, 4242); put(8, "pts/0"); put(44, "alice"); put(76, "10.0.0.9"); putI32(340, 1_700_000_000)
        bytes[384] = 8 // DEAD_PROCESS
        let sessions = bytes.withUnsafeBufferPointer { parseUtmp($0) }
        #expect(sessions == [LoginSession(user: "alice", line: "pts/0", host: "10.0.0.9", pid: 4242, loginTime: 1_700_000_000_000)])
        #expect([UInt8]().withUnsafeBufferPointer { parseUtmp($0) }.isEmpty)
    }

    @Test func osReleaseAndCPUInfo() throws {
        let os = parseOSRelease("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n# comment\nVERSION_ID='12'\nbroken\n")
        #expect(os["PRETTY_NAME"] == "Debian GNU/Linux 12 (bookworm)")
        #expect(os["ID"] == "debian")
        #expect(os["VERSION_ID"] == "12")
        guard let shared = Fixtures.sharedData else { return }
        let cpu = parseCPUInfo(try String(contentsOfFile: shared + "/node-exporter-fixtures/proc/cpuinfo", encoding: .utf8))
        #expect(cpu.count == 8)
        #expect(cpu.model == "Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz")
    }

    /// ARM hosts (the fleet's first host is an ARM64 appliance): /proc/cpuinfo as arm64 kernels print it
    /// (no model name: implementer and part per CPU), as ARMv7 kernels print it (a model name per CPU and
    /// the board as `Hardware`), and as old ARMv7 kernels did (`Processor : NAME` before the CPUs). Written
    /// here after the kernel's format (arch/arm64/kernel/cpuinfo.c, arch/arm/kernel/setup.c), not captured.
    @Test func armCPUInfo() {
        let armv8 = (0..<4).map { """
            processor\t: \($0)
            BogoMIPS\t: 100.00
            Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid
            CPU implementer\t: 0x41
            CPU architecture: 8
            CPU variant\t: 0x1
            CPU part\t: 0xd07
            CPU revision\t: 2

            """ }.joined()
        #expect(parseCPUInfo(armv8) == ("ARM Cortex-A57", 4))
        let armv7 = (0..<2).map { """
            processor\t: \($0)
            model name\t: ARMv7 Processor rev 4 (v7l)
            BogoMIPS\t: 38.40
            Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32
            CPU implementer\t: 0x41
            CPU architecture: 7
            CPU variant\t: 0x0
            CPU part\t: 0xd03
            CPU revision\t: 4

            """ }.joined() + "Hardware\t: BCM2835\nRevision\t: a02082\nSerial\t\t: 00000000a1b2c3d4\n"
        #expect(parseCPUInfo(armv7) == ("ARMv7 Processor rev 4 (v7l)", 2))
        let oldARMv7 = "Processor\t: ARMv7 Processor rev 10 (v7l)\nprocessor\t: 0\nBogoMIPS\t: 790.52\n\nprocessor\t: 1\nBogoMIPS\t: 790.52\n\nHardware\t: Freescale i.MX 6Quad\n"
        #expect(parseCPUInfo(oldARMv7) == ("ARMv7 Processor rev 10 (v7l)", 2))
        // Only the board known, or an unknown core: still a name, never a crash.
        #expect(parseCPUInfo("processor\t: 0\nHardware\t: Alpine v2\n") == ("Alpine v2", 1))
        #expect(parseCPUInfo("processor\t: 0\nCPU implementer\t: 0x99\nCPU part\t: 0x001\n") == ("implementer 0x99 part 0x001", 1))
        #expect(parseCPUInfo("processor\n: :\nCPU part :\n\0garbage") .count == 1)
    }

    @Test func systemctlUnits() {
        let text = """
        ssh.service                 loaded active   running OpenBSD Secure Shell server
        ● broken.service            loaded failed   failed  Broken thing
        systemd-tmpfiles-clean.timer loaded active waiting Daily Cleanup of Temporary Directories
        garbage
        """
        let u = parseSystemctlUnits(text)
        #expect(u.map(\.name) == ["ssh.service", "broken.service", "systemd-tmpfiles-clean.timer"])
        #expect(u[1].active == "failed")
        #expect(u[0].description == "OpenBSD Secure Shell server")
    }

    @Test func passwd() {
        let p = parsePasswd("root:x:0:0:root:/root:/bin/bash\n# c\nbad\nalice:x:1000:1000::/home/alice:/bin/sh\n")
        #expect(p == [0: "root", 1000: "alice"])
    }
}
/// Exits from the kernel's process events connector, on datagrams captured on this machine (2026-12-01:
/// a fork, `sh -c "exit 3"` exiting, `sleep` killed by SIGKILL) and damaged copies.
@Suite struct ProcessExitParserTests {
    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex { let j = hex.index(i, offsetBy: 2); out.append(UInt8(hex[i..<j], radix: 16)!); i = j }
        return out
    }
    static let fork = bytes("4c00000003000000d4040000000000000100000001000000d4040000000000002800000001000000000000001dde1b2bd60c0000681b0000681b0000911b0000911b00000000000000000000")
    static let exit3 = bytes("4c00000003000000d6040000000000000100000001000000d6040000000000002800000000000080000000002440282bd60c0000911b0000911b00000003000011000000681b0000681b0000")
    static let killed = bytes("4c00000003000000d9040000000000000100000001000000d904000000000000280000000000008000000000eb731d37d60c0000921b0000921b00000900000011000000681b0000681b0000")

    func parse(_ b: [UInt8]) -> [ProcessExit] { b.withUnsafeBytes { parseProcConnectorEvents($0).exits } }
    func changed(_ b: [UInt8]) -> Set<Int32> { b.withUnsafeBytes { parseProcConnectorEvents($0).changed } }

    @Test func exitsAndSignals() {
        #expect(parse(Self.fork).isEmpty)
        // A fork names its child (7057) to be read; an exit is not a change to re-read.
        #expect(changed(Self.fork) == [7057])
        #expect(changed(Self.exit3).isEmpty)
        // The same fork as an exec of 7016 (what = 2): the exec'ing process is re-read, its command line too.
        var exec = Self.fork; exec[36] = 2
        #expect(changed(exec) == [7016])
        #expect(exec.withUnsafeBytes { parseProcConnectorEvents($0).execs } == [7016])
        #expect(Self.fork.withUnsafeBytes { parseProcConnectorEvents($0).execs }.isEmpty)
        // A thread's fork (child pid ≠ tgid) is not a new process.
        var thread = Self.fork; thread[60] = 0x92
        #expect(changed(thread).isEmpty)
        #expect(parse(Self.exit3) == [ProcessExit(pid: 7057, waitStatus: 0x300)])
        #expect(parse(Self.exit3).first?.description == "exit 3")
        #expect(parse(Self.killed).first?.description == "signal 9")
        #expect(parse(Self.killed).first?.succeeded == false)
        // Two messages in one datagram.
        #expect(parse(Self.exit3 + Self.killed).map(\.pid) == [7057, 7058])
    }

    @Test func damagedDatagramsAreSkipped() {
        // Truncated anywhere: nothing read past the end, nothing invented.
        for n in 0..<Self.exit3.count { #expect(parse(Array(Self.exit3[..<n])).isEmpty, "cut at \(n)") }
        for n in 0..<Self.fork.count { #expect(changed(Array(Self.fork[..<n])).isEmpty, "cut at \(n)") }
        // A length field of 0, of less than a header, or past the end.
        for length: UInt8 in [0, 8, 0xff] {
            var b = Self.exit3; b[0] = length
            #expect(parse(b).isEmpty)
        }
        // A thread's exit (pid ≠ tgid) is not a process's.
        var thread = Self.exit3; thread[56] = 0x92
        #expect(parse(thread).isEmpty)
    }
}

/// The kernel tables of node_exporter's default arp, softnet, conntrack and udp_queues collectors, on the
/// procfs fixtures (real hosts' files, ../shared/data/procfs-fixtures), this VM's captures and damaged copies.
@Suite struct KernelTableParserTests {
    static func fixture(_ rel: String) throws -> String {
        try String(contentsOfFile: try #require(Fixtures.sharedData) + "/procfs-fixtures/proc/" + rel, encoding: .utf8)
    }

    @Test(.enabled(if: Fixtures.hasSharedData, Comment(rawValue: Fixtures.skipMessage)))
    func softnetOfEveryKernelFormat() throws {
        // 13, 13, 11, 9 and 10 columns: the CPU is the 13th column where printed, else the line's index.
        let lines = parseSoftnet(try Self.fixture("net/softnet_stat"))
        #expect(lines.map(\.cpu) == [0, 1, 2, 3, 4])
        #expect(lines[1] == SoftnetLine(cpu: 1, processed: 0x953d1a, dropped: 0x446, timeSqueezed: 0xb1, cpuCollision: 0,
                                        receivedRPS: 0x8eeb9a, flowLimitCount: 0x2b, backlogLength: 0xdc))
        #expect(lines[3].cpuCollision == 0x20e76 && lines[3].receivedRPS == 0 && lines[3].backlogLength == 0)
        // Too few columns (the fixture's broken copy), a field that is not hexadecimal, nothing.
        #expect(parseSoftnet(try Self.fixture("net/softnet_stat.broken")).isEmpty)
        #expect(parseSoftnet("00000001 zz 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n").isEmpty)
        #expect(parseSoftnet("").isEmpty)
    }

    @Test func softnetOfThisVM() {
        // Captured here (kernel 6.18: 15 columns, the CPU in the 13th).
        let text = """
            00034c95 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000
            00033e0e 00000000 00000003 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000

            """
        #expect(parseSoftnet(text).map { [$0.cpu, Int($0.processed), Int($0.timeSqueezed)] } == [[0, 0x34c95, 0], [1, 0x33e0e, 3]])
    }

    @Test(.enabled(if: Fixtures.hasSharedData, Comment(rawValue: Fixtures.skipMessage)))
    func udpQueuesAndARP() throws {
        let q = try #require(parseUDPQueues(try Self.fixture("net/udp")))
        #expect(q.tx == 2 && q.rx == 2)
        // A line without the queue column is skipped; a header alone is zero; an empty file is nothing.
        #expect(parseUDPQueues(try Self.fixture("net/udp_broken")).map { [$0.tx, $0.rx] } == [0, 0])
        #expect(parseUDPQueues("") == nil)
        #expect(parseUDPQueues("  sl local\n 1: a b 0A zz:01 00\n 2: a b 0A 10:2 00\n").map { [$0.tx, $0.rx] } == [16, 2])
        let v6 = try #require(parseUDPQueues(try Self.fixture("net/udp6")))
        #expect(v6.tx == 0 && v6.rx == 0)
        // Incomplete neighbours count too, per device in order of appearance; short lines are skipped.
        #expect(parseARPEntries(try Self.fixture("net/arp")).map { "\($0.device)=\($0.entries)" } == ["ens33=2"])
        #expect(parseARPEntries("IP address HW type\n10.0.0.1 0x1 0x2 aa:bb\n10.0.0.2 0x1 0x2 aa:bb * eth1\n").map(\.device) == ["eth1"])
        #expect(parseARPEntries("").isEmpty)
    }

    @Test func conntrackStatistics() {
        let header = "entries  searched found new invalid ignore delete delete_list insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n"
        let cpu = "00000021  00000000 00000002 00000000 00000003 0000588a 00000000 00000000 00000000 00000000 00000001 00000000 00000000  00000000 00000000 00000000 00000004\n"
        let sums = parseConntrackStat(header + cpu + cpu)
        #expect(sums["found"] == 4 && sums["invalid"] == 6 && sums["ignore"] == 2 * 0x588a && sums["drop"] == 2 && sums["search_restart"] == 8)
        // A row with another column count, or a field that is not hex, is skipped; no rows, no figures.
        #expect(parseConntrackStat(header + cpu + "00000021 00000000\n" + cpu.replacingOccurrences(of: "0000588a", with: "xyz"))["ignore"] == 0x588a)
        #expect(parseConntrackStat(header).isEmpty)
        #expect(parseConntrackStat("").isEmpty)
    }

    @Test func osVersionNumbers() {
        #expect(osVersionNumber("12") == 12)
        #expect(osVersionNumber("20.04") == 20.04)
        #expect(osVersionNumber("11.6.1") == 11.6)
        #expect(osVersionNumber("7.x") == 7)
        #expect(osVersionNumber("rolling") == nil)
        #expect(osVersionNumber("") == nil)
    }
}

/// The storage-stack and scheduler parsers behind node_exporter's mdadm, zfs, xfs, nfs, nfsd, ipvs,
/// bcache, schedstat and cpu collectors: real fixtures (procfs' and node_exporter's) and malformed variants.
@Suite struct StorageParserTests {
    static func procfs(_ rel: String) throws -> String {
        try String(contentsOfFile: try #require(Fixtures.sharedData) + "/procfs-fixtures/proc/" + rel, encoding: .utf8)
    }
    static func nodeExporter(_ rel: String) throws -> String {
        try String(contentsOfFile: try #require(Fixtures.sharedData) + "/node-exporter-fixtures/" + rel, encoding: .utf8)
    }

    @Test(.enabled(if: Fixtures.hasSharedData, Comment(rawValue: Fixtures.skipMessage)))
    func schedstatAndCPULists() throws {
        let rows = parseSchedstat(try Self.procfs("schedstat"))
        #expect(rows.map(\.cpu) == ["0", "1"])
        #expect(rows[0] == SchedstatLine(cpu: "0", runningNanoseconds: 2045936778163039, waitingNanoseconds: 343796328169361, timeslices: 4767485306))
        // Too few fields, a CPU that is not a number, a field that is not a number, nothing.
        #expect(parseSchedstat("cpu0 1 2 3\ncpux 1 2 3 4 5 6 7 8 9\ncpu1 1 2 3 4 5 6 7 x 9\n\n").isEmpty)
        #expect(parseCPUList("1,3-5,9") == [1, 3, 4, 5, 9])
        #expect(parseCPUList("") == [])
        #expect(parseCPUList("5-3") == nil && parseCPUList("a") == nil && parseCPUList("1-2-3") == nil && parseCPUList("0-99999999") == nil)
    }

    @Test(.enabled(if: Fixtures.hasSharedData, Comment(rawValue: Fixtures.skipMessage)))
    func mdstatOfEveryArrayState() throws {
        let devices = Dictionary(uniqueKeysWithValues: parseMDStat(try Self.procfs("mdstat")).map { ($0.name, $0) })
        #expect(devices.count == 18)
        let md3 = try #require(devices["md3"])
        #expect(md3.state == "active" && md3.disksRequired == 8 && md3.disksActive == 8 && md3.disksSpare == 2 && md3.blocks == 5853468288)
        let md6 = try #require(devices["md6"])
        #expect(md6.state == "recovering" && md6.disksActive == 1 && md6.disksFailed == 1 && md6.blocksSynced == 16775552)
        #expect(devices["md11"]?.state == "resync" && devices["md11"]?.blocksSynced == 0) // resync=PENDING
        #expect(devices["md201"]?.state == "check")
        #expect(devices["md4"].map { [$0.disksRequired, $0.disksActive, $0.disksFailed, $0.disksSpare] } == [0, 0, 1, 1]) // inactive
        #expect(devices["md10"].map { [$0.disksRequired, $0.disksActive] } == [2, 2]) // raid0: every member counts
        // A device line without its status line, a status line that is not a block count, a bad "[n/m]".
        #expect(parseMDStat("md0 : active raid1 sda[0]").isEmpty)
        #expect(parseMDStat("md0 : active raid1 sda[0]\n      lots blocks [2/2] [UU]\n").isEmpty)
        #expect(parseMDStat("md0 : active raid1 sda[0]\n      100 blocks [2/x] [UU]\n").isEmpty)
        #expect(parseMDStat("").isEmpty)
    }

    @Test(.enabled(if: Fixtures.hasSharedData, Comment(rawValue: Fixtures.skipMessage)))
    func zfsKstats() throws {
        let arc = parseZFSKstat(try Self.nodeExporter("proc/spl/kstat/zfs/arcstats"))
        #expect(arc.numbers.first { $0.name == "hits" }?.value == 8772612)
        #expect(arc.numbers.first { $0.name == "memory_available_bytes" }?.value == -922337203685477580) // type 3: signed
        let objset = parseZFSKstat(try Self.nodeExporter("proc/spl/kstat/zfs/pool1/objset-2"))
        #expect(objset.strings["dataset_name"] == "pool1/dataset1" && objset.numbers.map(\.name) == ["writes", "nwritten", "reads", "nread", "nunlinks", "nunlinked"])
        let io = parseZFSIOKstat(try Self.nodeExporter("proc/spl/kstat/zfs/pool1/io"))
        #expect(io.first?.name == "nread" && io.first?.value == 1884160 && io.count == 12)
        // An unknown type, a value that is not a number, a row without its value; names and values that do not pair up.
        let bad = parseZFSKstat("h\nname type data\na 9 1\nb 4 x\nc 4\nd 4 5\n")
        #expect(bad.numbers.map(\.name) == ["d"] && bad.strings.isEmpty)
        #expect(parseZFSIOKstat("h\na b\n1\n").isEmpty && parseZFSIOKstat("").isEmpty)
    }

    @Test(.enabled(if: Fixtures.hasSharedData, Comment(rawValue: Fixtures.skipMessage)))
    func xfsAndRPCStatistics() throws {
        let xfs = parseXFSStats(try Self.procfs("fs/xfs/stat"))
        #expect(xfs["extent_alloc"] == [92447, 97589, 92448, 93751])
        #expect(xfs["blk_map"]?.count == 7)
        #expect(parseXFSStats("rw 1 x\nvnodes\nig 1 2\n") == ["ig": [1, 2]])
        let nfs = parseRPCStats(try Self.procfs("net/rpc/nfs"))
        #expect(nfs["net"] == [18628, 0, 18628, 6] && nfs["rpc"] == [4329785, 0, 4338291])
        #expect(nfs["proc2"]?.count == 18 && nfs["proc2"]?.first == 2) // the leading count is dropped
        let nfsd = parseRPCStats(try Self.nodeExporter("proc/net/rpc/nfsd"))
        #expect(nfsd["proc4ops"]?.count == 72 && nfsd["proc4ops"]?[3] == 1098 && nfsd["th"]?.first == 8)
        #expect(parseRPCStats("rc 1 x 3\nbare\n") == ["rc": [1]])
    }

    @Test(.enabled(if: Fixtures.hasSharedData, Comment(rawValue: Fixtures.skipMessage)))
    func ipvsServicesAndTotals() throws {
        let backends = parseIPVS(try Self.procfs("net/ip_vs"))
        #expect(backends.count == 13)
        let v6 = try #require(backends.first { $0.remoteAddress == "2620::4" })
        #expect(v6.proto == "TCP" && v6.localAddress == "2620::1" && v6.localPort == 80 && v6.activeConnections == 1 && v6.inactiveConnections == 1)
        let first = backends[0]
        #expect(first.localAddress == "192.168.0.22" && first.localPort == 3306 && first.remoteAddress == "192.168.82.22" && first.weight == 100)
        #expect(backends.last.map { [$0.proto, $0.localMark, $0.localAddress] } == ["FWM", "10001000", ""])
        let totals = try #require(parseIPVSStats(try Self.procfs("net/ip_vs_stats")))
        #expect(totals.connections == 0x16AA370 && totals.inBytes == 0x51D8C8883AB3)
        // Backends before any service, under a service whose address is malformed, or with missing columns are skipped.
        #expect(parseIPVS("  -> C0A85216:0CEA Tunnel 100 1 2\nTCP  ZZZ:0CEA wlc\n  -> C0A85216:0CEA Tunnel 100 1 2\nUDP  C0A80016:0035 rr\n  -> C0A85216:0035 Masq 1\n").isEmpty)
        #expect(parseIPVSStats("a\nb\n 1 2 3\n") == nil && parseIPVSStats("") == nil)
    }

    @Test func bcacheSizes() {
        #expect(parseBcacheSize("20.4G") == 21894266880)
        #expect(parseBcacheSize("1.1M/sec") == 1150976)
        #expect(parseBcacheSize("427.5k") == 437748)
        #expect(parseBcacheSize("512") == 512)
        #expect(parseBcacheSize("x") == nil && parseBcacheSize("1.2.3k") == nil && parseBcacheSize("") == nil && parseBcacheSize("1.k") == nil)
    }
}
