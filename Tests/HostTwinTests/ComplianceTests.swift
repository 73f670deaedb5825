import Foundation
import Testing
@testable import TwinCollectors
import TwinCore
@testable import TwinRules
import TwinStorage

/// The compliance pack: sshd_config read as sshd reads it, each check's findings, the pack as alerts with
/// "failing since", and SUID files attributed to their packages.
@Suite struct ComplianceTests {
    @Test func sshdSettingsAreReadAsSSHDReadsThem() {
        let texts = [
            "/etc/ssh/sshd_config": """
            # Debian's layout: drop-ins first, so they win
            Include /etc/ssh/sshd_config.d/*.conf
            PermitRootLogin yes
              passwordauthentication=no
            Match User backup
                PasswordAuthentication yes
            """,
            "/etc/ssh/sshd_config.d/10-hardening.conf": "PermitRootLogin no\n",
            "/etc/ssh/sshd_config.d/20-other.conf": "PermitRootLogin yes\nX11Forwarding no\n",
            "/etc/ssh/sshd_config.d/ignored.txt": "PasswordAuthentication yes\n",
        ]
        let s = SSHDConfig.effective(texts)
        #expect(s["permitrootlogin"] == .init(value: "no", file: "/etc/ssh/sshd_config.d/10-hardening.conf", line: 1))
        #expect(s["passwordauthentication"] == .init(value: "no", file: "/etc/ssh/sshd_config", line: 4), "the Match block does not count")
        #expect(s["x11forwarding"]?.value == "no")
        // An Include of itself stops at a depth bound instead of looping.
        #expect(SSHDConfig.effective(["/etc/ssh/sshd_config": "Include sshd_config\nPort 2222\n"])["port"]?.value == "2222")
        #expect(SSHDConfig.glob("/etc/ssh/sshd_config.d/*.conf", "/etc/ssh/sshd_config.d/a.conf"))
        #expect(!SSHDConfig.glob("/etc/ssh/sshd_config.d/*.conf", "/etc/ssh/sshd_config.d/sub/a.conf"))
        #expect(!SSHDConfig.glob("/*/*/*/*/*/x", "/a/b/c/d/e/x"), "more than four stars: not followed")
    }

    static func file(_ path: String, host: String? = nil, _ extra: [String: AttributeValue]) -> EntityVersion {
        var a: [String: AttributeValue] = ["path": .string(path), "type": "file", "mode": "0644", "owner": "root", "watch": "config"]
        if let host { a["host"] = .string(host) }
        a.merge(extra) { _, b in b }
        return EntityVersion(kind: .files, key: (host.map { $0 + "/" } ?? "") + path, attributes: a, validFrom: 0, validTo: nil)
    }

    @Test func eachCheckFindsWhatFails() {
        let sshd = Self.file("/etc/ssh/sshd_config", ["content": "PermitRootLogin yes\n"])
        #expect(ComplianceCheck.sshRootLogin.findings([sshd]).map(\.labels) == [Labels(["check": "ssh_root_login", "setting": "PermitRootLogin yes", "evidence": "/etc/ssh/sshd_config:1"])])
        // PasswordAuthentication unset: OpenSSH's default is yes.
        #expect(ComplianceCheck.sshPasswordAuthentication.findings([sshd]).first?.labels.dictionary["evidence"]?.contains("default") == true)
        // No sshd_config: nothing to fail.
        #expect(ComplianceCheck.sshRootLogin.findings([]).isEmpty)

        let entities = [
            Self.file("/etc/app.conf", ["mode": "0666"]),
            Self.file("/etc/cron.d", ["type": "dir", "mode": "1777"]),
            Self.file("/etc/alternatives/x", ["type": "symlink", "mode": "0777"]),
            Self.file("/etc/ok.conf", [:]),
            Self.file("/usr/bin/passwd", ["watch": "suid", "setuid": true, "mode": "4755", "package": "passwd"]),
            Self.file("/tmp/.x", ["watch": "suid", "setuid": true, "mode": "4755"]),
            Self.file("/opt/tool/helper", ["watch": "suid", "setuid": true, "mode": "4755"]),
        ]
        #expect(ComplianceCheck.worldWritable.findings(entities).compactMap { $0.labels.dictionary["path"] } == ["/etc/app.conf", "/etc/cron.d"])
        #expect(ComplianceCheck.unexpectedSUID(allowed: ["/opt/tool/helper"]).findings(entities).compactMap { $0.labels.dictionary["path"] } == ["/tmp/.x"])

        func port(_ address: String, _ port: Int64, host: String) -> EntityVersion {
            EntityVersion(kind: .listeningPorts, key: "\(host)/tcp/\(address):\(port)",
                          attributes: ["protocol": "tcp", "address": .string(address), "port": .int(port), "process": "x", "host": .string(host)], validFrom: 0, validTo: nil)
        }
        let ports = [port("0.0.0.0", 22, host: "a"), port("127.0.0.1", 5432, host: "a"), port("::", 8080, host: "b"), port("::1", 9977, host: "b")]
        let found = ComplianceCheck.unlistedListener(allowedPorts: [22]).findings(ports).map { $0.labels.dictionary }
        #expect(found.map { [$0["host"]!, $0["port"]!] } == [["b", "8080"]])
    }

    /// The pack's alerts fire at the first evaluation and give `hosttwin compliance` its "failing since";
    /// a finding fixed later passes, its alert resolved.
    @Test func thePackRunsAsAlertsAndGivesFailingSince() throws {
        let dir = try temporaryDirectory("hosttwin-compliance")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try TwinStore.open(dataDir: dir)
        let w = TwinWriter(store: store, policy: .testing)
        let t0 = TwinTime.nowMillis() / 1000 * 1000 - 600_000
        try w.begin(now: t0, interval: 1000)
        for s in 0..<300 {
            var o = Observation(timestamp: t0 + Int64(s) * 1000)
            let root = s < 200 ? "PermitRootLogin yes\nPasswordAuthentication no\n" : "PermitRootLogin no\nPasswordAuthentication no\n"
            o.set(.files, [Entity(kind: .files, key: "/etc/ssh/sshd_config", attributes: ["path": "/etc/ssh/sshd_config", "type": "file", "mode": "0644", "watch": "config", "content": .string(root)])])
            o.set(.listeningPorts, [Entity(kind: .listeningPorts, key: "tcp/0.0.0.0:8080", attributes: ["protocol": "tcp", "address": "0.0.0.0", "port": 8080, "process": "web"])])
            _ = try w.commit(o)
        }
        try w.finish(now: t0 + 300_000)
        let runner = try RuleRunner(store: store, sources: RuleSources(files: [], includeDefaults: false, includeCompliance: true), now: t0)
        for s in stride(from: 30, through: 290, by: 10) { try runner.evaluate(at: t0 + Int64(s) * 1000) }
        let checks = ComplianceCheck.checks(of: try RuleFile.compliance())
        #expect(checks.map(\.name) == ComplianceCheck.names)

        func report(_ s: Int64) throws -> [String: ComplianceResult] {
            let t = t0 + s * 1000
            let r = try ComplianceCheck.report(checks, state: { try store.state(at: t, kinds: $0.kinds) }, alerts: try store.activeAlerts(at: t), hosts: nil)
            return Dictionary(uniqueKeysWithValues: r.map { ($0.check, $0) })
        }
        let mid = try report(150)
        #expect(mid["ssh_root_login"]?.passed == false && mid["ssh_root_login"]?.failingSince == t0 + 30_000)
        #expect(mid["ssh_root_login"]?.findings.first?["evidence"] == "/etc/ssh/sshd_config:1")
        #expect(mid["ssh_password_authentication"]?.passed == true)
        #expect(mid["unlisted_listener"]?.passed == false && mid["unlisted_listener"]?.findings.first?["port"] == "8080")
        let late = try report(295)
        #expect(late["ssh_root_login"]?.passed == true && late["ssh_root_login"]?.failingSince == nil)
        #expect(try store.alertHistory(from: t0, to: .max).contains { $0.rule == "ComplianceSSHRootLogin" && $0.state == "resolved" })
    }

    /// Local accounts from /etc/passwd (Debian's layout), malformed lines skipped; the collector re-reads the
    /// file only when it changes, and a new account is a new entity.
    @Test func localAccountsAreEntities() throws {
        let text = """
        root:x:0:0:root:/root:/bin/bash
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
        # a comment
        broken:x:notanumber:1::/:/bin/sh
        short:x:5
        root:x:99:99:dup:/:/bin/sh
        _apt:x:42:65534::/nonexistent:/usr/sbin/nologin
        """
        let accounts = parsePasswdEntries(text)
        #expect(accounts.map(\.name) == ["root", "daemon", "_apt"])
        #expect(accounts.first == LocalAccount(name: "root", uid: 0, gid: 0, gecos: "root", home: "/root", shell: "/bin/bash"))

        let root = try temporaryDirectory("hosttwin-accounts")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try text.write(toFile: root + "/etc/passwd", atomically: true, encoding: .utf8)
        let collector = AccountCollector(), reader = FileReader()
        func tick() throws -> [Entity]? {
            var ctx = CollectContext(paths: HostPaths(root: root), reader: reader, config: CollectorConfig(), observation: Observation(timestamp: 0))
            _ = try collector.collect(&ctx)
            return ctx.observation.entities[.accounts]
        }
        #expect(try tick()?.first { $0.key == "root" }?.attributes["login"] == true)
        #expect(try tick() == nil, "unchanged: not read again")
        try (text + "\nmallory:x:1001:1001::/home/mallory:/bin/bash\n").write(toFile: root + "/etc/passwd", atomically: true, encoding: .utf8)
        #expect(try tick()?.contains { $0.key == "mallory" && $0.attributes["uid"] == .int(1001) } == true)
    }

    /// Debian version order as dpkg has it: every pair checked against `dpkg --compare-versions` itself.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/dpkg"), "needs dpkg"))
    func debianVersionsSortAsDpkgSortsThem() throws {
        let versions = ["1.0", "1.0-1", "1.0-2", "1:0.9", "1.0~rc1", "1.0~rc1-1", "1.0+deb12u1", "1.0.1", "1.00", "1.0a", "1.0-1~bpo12+1",
                        "2.6.1", "2.6.2", "1:9.2p1-2+deb12u6", "1:9.2p1-2+deb12u10", "20230311+deb12u1", "20250419~deb12u2", "0", "a", "1.2.3-4.5"]
        for a in versions {
            for b in versions {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/usr/bin/dpkg")
                p.arguments = ["--compare-versions", a, "lt", b]
                p.standardError = FileHandle.nullDevice
                try p.run()
                p.waitUntilExit()
                #expect((DebianVersion.compare(a, b) < 0) == (p.terminationStatus == 0), "\(a) < \(b)")
            }
        }
    }

    /// A Packages index, and apt's real lists on this host when `apt update` left lz4-compressed ones.
    @Test func aptListsGiveTheNewestVersions() throws {
        let index = """
        Package: openssl
        Version: 3.0.11-1~deb12u2
        Architecture: amd64
        Description: old

        Package: openssl
        Version: 3.0.15-1~deb12u1
        Architecture: amd64

        Package: tzdata
        Architecture: all
        Version: 2024a-0+deb12u1

        Package: broken
        Description: no version
        """
        #expect(parsePackagesIndex(index) == ["openssl:amd64": "3.0.15-1~deb12u1", "tzdata:all": "2024a-0+deb12u1"])
        let dir = "/var/lib/apt/lists"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where name.hasSuffix("_Packages.lz4") && name.contains("security") {
            let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
            let plain = try #require(data.withUnsafeBytes { lz4FrameDecompress($0, limit: 512 << 20) }, "\(name)")
            #expect(parsePackagesIndex(String(decoding: plain, as: UTF8.self)).count > 10, "\(name)")
            // Damaged: cut short, or a byte flipped in the frame header: refused, not a crash.
            #expect(data.prefix(data.count / 2).withUnsafeBytes { lz4FrameDecompress($0, limit: 512 << 20) } == nil)
            var bad = [UInt8](data); bad[4] ^= 0xff
            #expect(bad.withUnsafeBytes { lz4FrameDecompress($0, limit: 512 << 20) } == nil)
            #expect(data.withUnsafeBytes { lz4FrameDecompress($0, limit: 1000) } == nil, "the size limit holds")
        }
    }

    /// A security list's newer version becomes the installed package's `security_update`; the collector keeps
    /// the offers for installed packages only, so a package installed later (dpkg's status changed, the lists
    /// not) gets its offer too. Malformed stanzas are skipped.
    @Test func securityUpdatesFollowTheInstalledPackages() throws {
        let root = try temporaryDirectory("hosttwin-packages")
        defer { try? FileManager.default.removeItem(atPath: root) }
        for dir in ["/var/lib/dpkg", "/var/lib/apt/lists"] {
            try FileManager.default.createDirectory(atPath: root + dir, withIntermediateDirectories: true)
        }
        func installed(_ packages: [(String, String)], mtime: Int) throws {
            let text = packages.map { "Package: \($0.0)\nStatus: install ok installed\nArchitecture: amd64\nVersion: \($0.1)\nDescription: x\n multi-line\n" }
                .joined(separator: "\n")
            try text.write(toFile: root + "/var/lib/dpkg/status", atomically: false, encoding: .utf8)
            var times = [timespec(tv_sec: mtime, tv_nsec: 0), timespec(tv_sec: mtime, tv_nsec: 0)]
            #expect(utimensat(AT_FDCWD, root + "/var/lib/dpkg/status", &times, 0) == 0)
        }
        try """
        Package: openssl
        Version: 3.0.15-1~deb12u1
        Architecture: amd64

        Package: curl
        Version: 7.88.1-10+deb12u8
        Architecture: amd64

        Package: curl
        Version: broken, no architecture

        Package: zlib1g
        Version: 1:1.2.13.dfsg-1
        Architecture: amd64
        """.write(toFile: root + "/var/lib/apt/lists/deb.debian.org_debian-security_dists_bookworm-security_main_binary-amd64_Packages",
                  atomically: false, encoding: .utf8)
        let collector = PackageCollector(), reader = FileReader()
        func updates() throws -> [String: AttributeValue] {
            reader.startTick()
            var ctx = CollectContext(paths: HostPaths(root: root), reader: reader, config: CollectorConfig(), observation: Observation(timestamp: TwinTime.nowMillis()))
            #expect(try collector.collect(&ctx) == .ok)
            return Dictionary(uniqueKeysWithValues: (ctx.observation.entities[.packages] ?? []).map { ($0.key, $0.attributes["security_update"] ?? .null) })
        }
        try installed([("openssl", "3.0.11-1~deb12u2"), ("zlib1g", "1:1.2.13.dfsg-1")], mtime: 1_700_000_000)
        #expect(try updates() == ["openssl:amd64": .string("3.0.15-1~deb12u1"), "zlib1g:amd64": .null])
        try installed([("openssl", "3.0.15-1~deb12u1"), ("zlib1g", "1:1.2.13.dfsg-1"), ("curl", "7.88.1-10+deb12u5")], mtime: 1_700_000_100)
        #expect(try updates() == ["openssl:amd64": .null, "zlib1g:amd64": .null, "curl:amd64": .string("7.88.1-10+deb12u8")])
    }

    /// The SUID scan names the package that installed each file, through merged /usr's old names too.
    @Test func suidFilesAreAttributedToTheirPackages() throws {
        let root = try temporaryDirectory("hosttwin-suid")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/var/lib/dpkg/info", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/usr/bin", withIntermediateDirectories: true)
        // A list larger than the reader's buffer, and one without a final newline.
        let filler = (0..<5_000).map { "/usr/share/doc/util-linux/page\($0).html\n" }.joined()
        try ("/.\n/bin\n\n" + filler + "/bin/su\n/usr/share/doc/util-linux\n").write(toFile: root + "/var/lib/dpkg/info/util-linux.list", atomically: false, encoding: .utf8)
        try "/usr/bin/passwd".write(toFile: root + "/var/lib/dpkg/info/passwd:amd64.list", atomically: false, encoding: .utf8)
        let owners = SUIDScanner.packages(of: ["/usr/bin/su", "/usr/bin/passwd", "/usr/bin/dropped"], paths: HostPaths(root: root))
        #expect(owners == ["/usr/bin/su": "util-linux", "/usr/bin/passwd": "passwd"])
    }
}
