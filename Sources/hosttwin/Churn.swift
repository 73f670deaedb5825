import Foundation
import Glibc
import TwinCore

/// Host churn for the fidelity and overhead benchmarks, on a thread of its own: short-lived processes
/// (`/bin/sleep`), listening TCP sockets and loopback TCP connections, each living a random time in
/// `life`, started at the given rates (per second). Seeded, so two runs churn alike. Every start is
/// recorded with its time, so the benchmark can ask when the twin first showed it.
final class Churn: @unchecked Sendable { // state touched by the churn thread, read after `stop()`
    struct Rates {
        var processes: Double = 0
        var listeners: Double = 0
        var connections: Double = 0
        /// Files written (created, or rewritten) in `fileDirectory`.
        var files: Double = 0
        var isZero: Bool { processes <= 0 && listeners <= 0 && connections <= 0 && files <= 0 }
    }

    /// What was started, and when (ms since the epoch, taken when the kernel had done it); and which
    /// listeners were closed while the churn ran, and when.
    struct Started {
        var processes: [(pid: Int32, at: Int64)] = []
        var listeners: [(port: Int, at: Int64)] = []
        var closedListeners: [(port: Int, at: Int64)] = []
        var connections: Int = 0
        var files: [(path: String, at: Int64)] = []
    }

    let rates: Rates
    let life: ClosedRange<Double>
    /// Where files are written (a directory the twin watches); nil writes none.
    let fileDirectory: String?
    private var rng: SeededRandom
    private let stopped = ManagedAtomicFlag()
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)
    private(set) var started = Started()
    private(set) var errors: [String] = []

    init(rates: Rates, life: ClosedRange<Double> = 0.2...5, fileDirectory: String? = nil, seed: UInt64 = 1) {
        self.rates = rates
        self.life = life
        self.fileDirectory = fileDirectory
        rng = SeededRandom(seed: seed)
    }

    func start() {
        guard !rates.isZero else { return }
        let t = Thread { [self] in loop(); done.signal() }
        t.name = "hosttwin-churn"
        thread = t
        t.start()
    }

    /// Stops starting things, ends whatever still lives and waits for the thread.
    func stop() {
        guard thread != nil else { return }
        stopped.set()
        done.wait()
        thread = nil
    }

    private func loop() {
        var children: [pid_t] = []
        var sockets: [(fd: Int32, end: Double, listening: Int?)] = []
        // The connections' far end: a listener of ours, accepted without blocking.
        let server = listeningSocket()
        var next = (process: 0.0, listener: 0.0, connection: 0.0, file: 0.0)
        var written = 0
        let begin = now()
        var lastReap = 0.0
        while !stopped.isSet {
            let t = now() - begin
            if rates.processes > 0, t >= next.process {
                next.process += 1 / rates.processes
                let lifetime = String(format: "%.2f", Double.random(in: life, using: &rng))
                var pid: pid_t = 0
                let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sleep"), strdup(lifetime), nil]
                defer { for p in argv { free(p) } }
                if posix_spawn(&pid, "/bin/sleep", nil, nil, argv, environ) == 0 {
                    started.processes.append((pid, TwinTime.nowMillis()))
                    children.append(pid)
                } else if errors.count < 3 { errors.append("posix_spawn /bin/sleep failed") }
            }
            if rates.listeners > 0, t >= next.listener {
                next.listener += 1 / rates.listeners
                if let (fd, port) = listeningSocket() {
                    started.listeners.append((port, TwinTime.nowMillis()))
                    sockets.append((fd, t + Double.random(in: life, using: &rng), port))
                }
            }
            if rates.connections > 0, t >= next.connection, let (_, port) = server {
                next.connection += 1 / rates.connections
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                var a = loopback(port: port)
                let ok = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
                if ok == 0 { sockets.append((fd, t + Double.random(in: life, using: &rng), nil)); started.connections += 1 } else { close(fd) }
            }
            if rates.files > 0, t >= next.file, let dir = fileDirectory {
                next.file += 1 / rates.files
                // One of 50 files, each write with new content: every write is a change the twin should show.
                let path = dir + "/churn-\(written % 50).conf"
                written += 1
                if FileManager.default.createFile(atPath: path, contents: Data("value = \(written)\n".utf8)) {
                    started.files.append((path, TwinTime.nowMillis()))
                }
            }
            if let (sfd, _) = server {
                while true {
                    let c = accept(sfd, nil, nil)
                    if c < 0 { break }
                    sockets.append((c, t + life.upperBound + 1, nil))
                }
            }
            sockets.removeAll { s in
                guard s.end <= t else { return false }
                close(s.fd)
                if let port = s.listening { started.closedListeners.append((port, TwinTime.nowMillis())) }
                return true
            }
            if t - lastReap >= 0.05 {
                lastReap = t
                children.removeAll { pid in
                    var status: Int32 = 0
                    return waitpid(pid, &status, WNOHANG) == pid
                }
            }
            usleep(2_000)
        }
        for s in sockets { close(s.fd) }
        if let (fd, _) = server { close(fd) }
        for pid in children {
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }

    private func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    private func loopback(port: Int) -> sockaddr_in { loopbackAddress(port: UInt16(port)) }

    /// A non-blocking TCP socket listening on 127.0.0.1 and a port the kernel chose.
    private func listeningSocket() -> (Int32, Int)? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var a = loopback(port: 0)
        let bound = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 512) == 0 else { close(fd); return nil }
        var out = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &out) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return (fd, Int(UInt16(bigEndian: out.sin_port)))
    }
}

/// 127.0.0.1:`port` as a `sockaddr_in` (the churn, busy-host and burst harnesses' sockets).
func loopbackAddress(port: UInt16) -> sockaddr_in {
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_port = in_port_t(port.bigEndian)
    a.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    return a
}

/// A flag set once from one thread and read from another.
final class ManagedAtomicFlag: @unchecked Sendable { // guarded by `lock`
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
