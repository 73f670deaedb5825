import Foundation
import Testing
@testable import TwinCollectors

/// The byte-level number reader must give exactly what `Double(String)` gives for every form the kernel
/// prints, and the per-line key cache must notice a changed layout.
@Suite struct ScannerTests {
    func number(_ s: String) -> Double? { s.withBytes { ByteScanner($0).number(0..<$0.count) } }

    @Test func numbersMatchStrtod() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let text: String
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: text = String(UInt64.random(in: 0...UInt64.max, using: &rng))
            case 1: text = String(Int64.random(in: -1_000_000_000...1_000_000_000, using: &rng))
            case 2:
                let intPart = Int.random(in: 0...999_999, using: &rng)
                let frac = String(Int.random(in: 0...99_999_999, using: &rng))
                text = "\(intPart).\(frac)"
            default: text = String(format: "%.2f", Double.random(in: 0...100, using: &rng))
            }
            #expect(number(text)?.bitPattern == Double(text)?.bitPattern, "\(text)")
        }
        for odd in ["", "-", ".", "1e3", "0x10", "12a", "--1", "1.2.3", "NaN"] {
            #expect(number(odd)?.bitPattern == Double(odd)?.bitPattern, "\(odd)")
        }
    }

    @Test func lineKeyCacheNoticesChangedKeys() {
        let cache = LineKeyCache<String>()
        var made = 0
        func lookup(_ text: String) -> String? {
            text.withBytes { b in
                let s = ByteScanner(b)
                return cache.value(0, 0..<b.count, s) { made += 1; return s.string(0..<b.count) }
            }
        }
        #expect(lookup("MemTotal") == "MemTotal")
        #expect(lookup("MemTotal") == "MemTotal")
        #expect(made == 1)
        #expect(lookup("MemFree") == "MemFree")
        #expect(lookup("MemFreX") == "MemFreX")
        #expect(made == 3)
    }

    @Test func inetDiagMessages() {
        // One AF_INET LISTEN socket 127.0.0.1:8080 (uid 1000, inode 4242), then NLMSG_DONE.
        var b = [UInt8](repeating: 0, count: 16 + 72 + 20)
        func put32(_ o: Int, _ v: UInt32) { for i in 0..<4 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
        put32(0, 88); b[4] = 20
        b[16] = 2; b[17] = 10
        b[20] = 0x1f; b[21] = 0x90
        b[24] = 127; b[27] = 1
        put32(16 + 64, 1000); put32(16 + 68, 4242)
        put32(88, 20); b[92] = 3
        let (socks, done, err) = b.withUnsafeBufferPointer { parseInetDiagMessages($0) }
        #expect(done && err == nil)
        #expect(socks == [SocketLine(localAddress: "127.0.0.1", localPort: 8080, remoteAddress: "0.0.0.0", remotePort: 0, state: 10, uid: 1000, inode: 4242, family: 2)])
        // A length that runs past the buffer ends the parse without a crash.
        put32(0, 5000)
        let bad = b.withUnsafeBufferPointer { parseInetDiagMessages($0) }
        #expect(bad.sockets.isEmpty && !bad.done)
        #expect([UInt8]().withUnsafeBufferPointer { parseInetDiagMessages($0) }.sockets.isEmpty)
    }

    static let hasSockDiag = NetlinkSockDiag().dump(family: UInt8(AF_INET), proto: UInt8(IPPROTO_TCP), states: 1 << 10) != nil

    @Test(.enabled(if: hasSockDiag, "needs netlink sock_diag")) func liveNetlinkSeesOurListeningSocket() throws {
        let (fd, port) = try EndToEndTests.listeningSocket()
        defer { close(fd) }
        let socks = try #require(NetlinkSockDiag().dump(family: UInt8(AF_INET), proto: UInt8(IPPROTO_TCP), states: 1 << 10))
        #expect(socks.contains { $0.localPort == port && $0.localAddress == "127.0.0.1" && $0.state == 10 })
    }

    @Test func hwmonNames() {
        #expect(explodeHwmonFilename("temp1_input")! == ("temp", 1, "input"))
        #expect(explodeHwmonFilename("pwm1")! == ("pwm", 1, ""))
        #expect(explodeHwmonFilename("pwm1_auto_point1_pwm")! == ("pwm", 1, "auto_point1_pwm"))
        #expect(explodeHwmonFilename("beep_enable")! == ("beep_enable", 0, ""))
        #expect(explodeHwmonFilename("temp1x") == nil)
        #expect(explodeHwmonFilename("1temp") == nil)
        #expect(cleanHwmonName("  Core 0\n") == "core_0")
        #expect(cleanHwmonName("applesmc.768") == "applesmc_768")
    }
}
