import Foundation
import Testing
import TwinCore
@testable import TwinSecurity
import TwinStorage
@testable import TwinServer

/// Data classification, encryption at rest and key rotation (issue 12).
@Suite(.serialized) struct DataPolicyTests {
    @Test func sealingIsAuthenticatedDeterministicAndBoundToItsAttribute() throws {
        let dir = try temporaryDirectory("hosttwin-keys")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keys = try KeyRing(dataDir: dir, create: true)
        let value = AttributeValue.string("mysqld --password=*** --user=mysql")
        let sealed = keys.seal(value, context: "processes.command")
        guard case .string(let text) = sealed else { Issue.record("not sealed"); return }
        #expect(text.hasPrefix("enc:\(keys.currentID!):") && !text.contains("mysqld"))
        #expect(keys.seal(value, context: "processes.command") == sealed, "one value seals to one text under one key")
        #expect(keys.open(sealed, context: "processes.command") == value)
        #expect(keys.open(sealed, context: "users.user") == nil, "bound to its attribute")
        // One bit of the ciphertext flipped (decoded, so no base64 padding bit is chosen by chance).
        let prefix = "enc:\(keys.currentID!):"
        var bytes = [UInt8](try #require(Data(base64Encoded: String(text.dropFirst(prefix.count)))))
        bytes[bytes.count / 2] ^= 1
        #expect(keys.open(.string(prefix + Data(bytes).base64EncodedString()), context: "processes.command") == nil)
        #expect(keys.open(.int(4), context: "processes.command") == nil)
        // A process without the keys sees the masked form.
        let stranger = PolicyCipher(policy: DataPolicy(), keys: try KeyRing(dataDir: dir + "/elsewhere", create: false))
        #expect(stranger.open(.processes, ["command": sealed])["command"] == .string("***"))
        #expect(PolicyCipher(policy: DataPolicy(), keys: keys).open(.processes, ["command": sealed])["command"] == value)
        // Files are private.
        let mode = (try FileManager.default.attributesOfItem(atPath: keys.directory + "/\(keys.currentID!).key"))[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    /// A sealed value's plaintext is the value's JSON, byte for byte as JSONEncoder writes it (the nonce is
    /// derived from it), and reads back as JSONDecoder reads it, with or without the fast path.
    @Test func sealedPlaintextIsTheValuesJSON() throws {
        let values: [AttributeValue] = [
            .string(""), .string("10.1.2.3:443"), .string("[2001:db8::1]:22"), .string("mysqld --password=*** --user=mysql"),
            .string("/usr/sbin/sshd -D"), .string("/"), .string("a//b/"), .string("say \"hi\""), .string("back\\slash"), .string("tab\there"), .string("ünïcode ✓"),
            .string("del\u{7F}"), .string("007"), .string("true"), .int(0), .int(-1), .int(42), .int(.max), .int(.min),
            .double(1.5), .double(-0.0), .double(1e300), .double(3), .bool(true), .bool(false), .null,
        ]
        for v in values {
            let json = [UInt8](try JSONEncoder().encode(v))
            #expect(SealedPlaintext.encode(v) == json, "\(v)")
            #expect(SealedPlaintext.decode(Data(json)) == (try JSONDecoder().decode(AttributeValue.self, from: Data(json))), "\(v)")
        }
        for text in ["-0", "1.0", "01", "12345678901234567890", "\"a\"b\"", "nul", "", "\"a\\/b\"", "\"a/b\"", "\"a\\nb\"", "\"a\\\""] {
            #expect(SealedPlaintext.decode(Data(text.utf8)) == (try? JSONDecoder().decode(AttributeValue.self, from: Data(text.utf8))), "\(text)")
        }
    }

    @Test func policyFilesParseAndNameTheBadLine() throws {
        let p = try DataPolicy.parse("""
        # comment
        keep internal
        hash sensitive connections   # per kind
        drop sensitive users
        class processes.name sensitive
        """)
        #expect(p.action(.connections, .sensitive) == .hash && p.action(.users, .sensitive) == .drop && p.action(.processes, .sensitive) == .keep)
        #expect(p.classOf(.processes, "name") == .sensitive && p.classOf(.processes, "command") == .sensitive && p.classOf(.mounts, "fstype") == .internal)
        #expect(p.changesValues && !DataPolicy().changesValues)
        #expect(try DataPolicy.parse("resolution 1m").minuteRollups && !(try DataPolicy.parse("resolution 1m\nresolution raw").minuteRollups) && !p.minuteRollups)
        for (text, line) in [("keep internal\nshred sensitive", 2), ("keep secret", 1), ("\n\nhash sensitive nowhere", 3), ("class processes sensitive", 1),
                             ("class processes.command top-secret", 1), ("keep", 1), ("keep internal\nresolution 5m", 2)] {
            do { _ = try DataPolicy.parse(text, file: "p.conf"); Issue.record("accepted \(text)") } catch {
                #expect("\(error)".contains("p.conf:\(line):"), "\(error)")
            }
        }
    }

    /// `run` seals command lines and user names at rest; the owner's CLI and admins see them, readers
    /// get `***` everywhere (API, SQL, diff, events); `key rotate --retire` leaves nothing under the old key.
    @Test func sensitiveValuesAreSealedAtRestAndShownToAdminsOnly() throws {
        let dir = try temporaryDirectory("hosttwin-policy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = dir + "/store"
        let admin = try EndToEndTests.cli(["token", "create", "--role", "admin", "--data-dir", store]).stdout.split(separator: "\n").last.map(String.init) ?? ""
        let port = try ServerTests.freePort()
        let run = try ServerTests.start(["run", "--data-dir", store, "--listen", "127.0.0.1:\(port)"])
        defer { run.terminate(); run.waitUntilExit() }
        #expect(try EndToEndTests.eventually(20) { (ServerTests.get(port, "/healthz").1["ticks"] as? Int ?? 0) >= 3 })

        // At rest: every stored command line and user name is sealed.
        func rawProcesses() throws -> [EntityVersion] {
            try TwinStore.open(dataDir: store, readOnly: true).state(at: TwinTime.nowMillis(), kinds: [.processes])
        }
        let raw = try rawProcesses()
        #expect(raw.count > 5)
        #expect(raw.allSatisfy { KeyRing.sealedKeyID($0.attributes["command"] ?? .null) != nil }, "a command line stored in clear")
        #expect(raw.allSatisfy { $0.attributes["user"] == nil || KeyRing.sealedKeyID($0.attributes["user"]!) != nil })

        // The API: readers (no token on loopback) see ***, admins see the commands.
        // A long timeout: under a loaded machine a debug build's full process list can take seconds (the
        // cause of a rare failure here); what each last answer was goes into the failure's message.
        var last = ""
        func commands(_ token: String?) -> [String] {
            let r = LoopbackHTTP.request(port: port, method: "GET", path: "/api/v1/twin/entities/processes",
                                         headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:], timeout: 30)
            last = r.map { "status \($0.status), \($0.body.utf8.count) B: \($0.body.prefix(200))" } ?? "no answer within 30 s"
            let entities = ((ServerTests.json(r?.body ?? "")["data"] as? [String: Any])?["entities"] as? [[String: Any]]) ?? []
            return entities.compactMap { ($0["attributes"] as? [String: Any])?["command"] as? String }
        }
        #expect(!commands(nil).isEmpty && commands(nil).allSatisfy { $0 == "***" })
        #expect(EndToEndTests.eventually(60) { commands(admin).contains { $0.contains("hosttwin") } }, "the admin sees hosttwin's own command line; last: \(last)")
        let sql = ServerTests.get(port, "/api/v1/twin/sql?query=\(ServerTests.q("select command, user from processes"))")
        #expect(sql.0 == 200 && ((sql.1["rows"] as? [[Any]]) ?? []).allSatisfy { ($0[0] as? String) == "***" })
        // The owner's CLI opens them with the keys.
        let ps = try EndToEndTests.cli(["ps", "--data-dir", store, "--json"])
        #expect(ps.stdout.contains("hosttwin") && !ps.stdout.contains("enc:"))

        // Rotation while `run` writes, then retiring the old key.
        let before = Set(raw.compactMap { KeyRing.sealedKeyID($0.attributes["command"] ?? .null) })
        let rotated = try EndToEndTests.cli(["key", "rotate", "--retire", "--data-dir", store, "--json"])
        #expect(rotated.status == 0, "\(rotated.stderr)")
        let current = ((try? JSONSerialization.jsonObject(with: Data(rotated.stdout.utf8))) as? [String: Any])?["current"] as? String ?? "?"
        usleep(1_500_000)
        let all = try TwinStore.open(dataDir: store, readOnly: true).versionsStarting(from: 0, to: .max)
        let ids = Set(all.flatMap { $0.attributes.values.compactMap(KeyRing.sealedKeyID) })
        #expect(ids == [current], "values sealed under \(ids.subtracting([current])) remain (was \(before))")
        for old in before { #expect(!FileManager.default.fileExists(atPath: store + "/keys/\(old).key")) }
        #expect(try EndToEndTests.cli(["ps", "--data-dir", store, "--json"]).stdout.contains("hosttwin"))
        #expect(EndToEndTests.eventually(60) { commands(admin).contains { $0.contains("hosttwin") } }, "last: \(last)")
        let audit = try EndToEndTests.cli(["audit", "show", "--data-dir", store, "--json"]).stdout
        #expect(audit.contains("key.rotate"))
    }

    /// A policy that hashes or drops at the source: nothing sealed, hashes comparable, dropped values absent.
    @Test(arguments: ["hash", "drop"])
    func hashOrDropAtTheSource(_ action: String) throws {
        let dir = try temporaryDirectory("hosttwin-policy-\(action)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "keep internal\n\(action) sensitive processes   # the rule under test\n".write(toFile: dir + "/policy", atomically: true, encoding: .utf8)
        let port = try ServerTests.freePort()
        let r = try EndToEndTests.cli(["run", "--data-dir", dir + "/store", "--ticks", "3", "--listen", "127.0.0.1:\(port)", "--policy", dir + "/policy"])
        #expect(r.status == 0, "\(r.stderr)")
        let procs = try TwinStore.open(dataDir: dir + "/store", readOnly: true).state(at: TwinTime.nowMillis(), kinds: [.processes])
        #expect(procs.count > 5)
        if action == "drop" {
            #expect(procs.allSatisfy { $0.attributes["command"] == nil && $0.attributes["user"] == nil && $0.attributes["name"] != nil })
        } else {
            let hashes = procs.compactMap { $0.attributes["user"]?.description }
            #expect(procs.allSatisfy { ($0.attributes["command"]?.description ?? "").hasPrefix("h:") })
            #expect(!hashes.isEmpty && hashes.allSatisfy { $0.hasPrefix("h:") && $0.count == 18 })
            #expect(Set(hashes).count < hashes.count, "one user (root) hashes to one value")
        }
        let bad = try EndToEndTests.cli(["run", "--data-dir", dir + "/store2", "--ticks", "1", "--policy", dir + "/none"])
        #expect(bad.status != 0 && bad.stderr.contains("--policy"))
        try "keep internal\nshred sensitive\n".write(toFile: dir + "/bad", atomically: true, encoding: .utf8)
        let invalid = try EndToEndTests.cli(["run", "--data-dir", dir + "/store3", "--ticks", "1", "--policy", dir + "/bad"])
        #expect(invalid.status != 0 && invalid.stderr.contains(dir + "/bad:2:"), "\(invalid.stderr)")
    }
}
