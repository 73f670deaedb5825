import Foundation

/// A synthetic busy host for the observation study: `processes` sleeping child processes and `sockets`
/// TCP sockets on loopback held by this process (a third listening, the rest connected pairs), kept until
/// ``stop()``. The descriptor limit is raised as far as the hard limit allows.
final class BusyHost {
    private(set) var children: [pid_t] = []
    private(set) var sockets: [Int32] = []

    init(processes: Int, sockets wanted: Int) throws {
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        let need = rlim_t(wanted + 256)
        if limit.rlim_cur < need {
            limit.rlim_cur = min(need, limit.rlim_max)
            setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        }
        guard limit.rlim_cur >= need else { throw CLIError("the descriptor limit (\(limit.rlim_cur)) is below the \(wanted) sockets asked for") }
        // The children get an empty signal mask (this thread's blocks SIGTERM, and a child would inherit it).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        for _ in 0..<processes {
            var pid: pid_t = 0
            let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sleep"), strdup("86400"), nil]
            defer { for p in argv { free(p) } }
            guard posix_spawn(&pid, "/bin/sleep", nil, &attributes, argv, environ) == 0 else { stop(); throw CLIError("posix_spawn /bin/sleep failed after \(children.count) processes") }
            children.append(pid)
        }
        let listeners = max(1, wanted / 3)
        var ports: [UInt16] = []
        for _ in 0..<listeners {
            guard let (fd, port) = Self.listen() else { break }
            sockets.append(fd)
            ports.append(port)
        }
        var k = 0
        while sockets.count + 1 < wanted, !ports.isEmpty {
            let port = ports[k % ports.count]
            k += 1
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var a = loopbackAddress(port: port)
            let ok = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard ok == 0 else { close(fd); break }
            sockets.append(fd)
            let listener = sockets[(k - 1) % ports.count]
            let accepted = accept(listener, nil, nil)
            if accepted >= 0 { sockets.append(accepted) }
        }
        guard sockets.count + 2 >= wanted else { stop(); throw CLIError("made \(sockets.count) of \(wanted) sockets") }
    }

    func stop() {
        for fd in sockets { close(fd) }
        sockets.removeAll()
        for pid in children {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        children.removeAll()
    }

    deinit { stop() }

    /// A TCP socket listening on 127.0.0.1 and a port the kernel chose (blocking, so accept waits for
    /// the connection just made).
    private static func listen() -> (Int32, UInt16)? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var a = loopbackAddress(port: 0)
        let bound = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, Glibc.listen(fd, 64) == 0 else { close(fd); return nil }
        var out = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &out) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return (fd, UInt16(bigEndian: out.sin_port))
    }
}
