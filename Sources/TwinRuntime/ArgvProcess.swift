import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs one program from an argv list — never through a shell — in its own process group, with a clean
/// environment, optional stdin, its output (stdout and stderr together) captured up to a bound, and a
/// timeout after which the whole group gets SIGTERM and, a second later, SIGKILL. Blocks the calling
/// thread: callers run it on their own threads (a hanging action never blocks collection or rules).
public struct ArgvProcess: Sendable {
    public var argv: [String]
    public var environment: [String: String] = [:]
    public var stdin: [UInt8]?
    public var timeout: Int64 = 30_000
    /// Output kept (bytes); the rest is read and dropped, and the result says it was cut.
    public var outputLimit = 64 << 10

    public init(argv: [String]) { self.argv = argv }

    /// How a run ended.
    public struct Result: Sendable, Equatable {
        /// `exit N`, `signal N`, or `timeout` (killed after the timeout).
        public var status: String
        public var succeeded: Bool
        public var output: String
        public var outputCut: Bool
        public var millis: Int64
    }

    /// The environment every program gets: a fixed PATH, C locale, and the variables given.
    public static func cleanEnvironment(_ extra: [String: String]) -> [String] {
        var env = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "LC_ALL": "C"]
        for (k, v) in extra { env[k] = v }
        return env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    }

    public func run() throws -> Result {
        guard let program = argv.first, program.hasPrefix("/") else { throw POSIXError(.ENOENT) }
        let started = DispatchTime.now().uptimeNanoseconds
        var out: [Int32] = [0, 0], input: [Int32] = [0, 0]
        guard pipe(&out) == 0 else { throw POSIXError(.EMFILE) }
        defer { close(out[0]) }
        if stdin != nil { guard pipe(&input) == 0 else { close(out[1]); throw POSIXError(.EMFILE) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if stdin != nil { posix_spawn_file_actions_adddup2(&actions, input[0], 0) } else { posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) }
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_adddup2(&actions, out[1], 2)
        posix_spawn_file_actions_addclose(&actions, out[0])
        if stdin != nil { posix_spawn_file_actions_addclose(&actions, input[1]) }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // Its own process group (the timeout kills children too), default signal handling, nothing blocked.
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        posix_spawnattr_setpgroup(&attr, 0)
        var all = sigset_t(), none = sigset_t()
        sigfillset(&all); sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setsigmask(&attr, &none)
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = Self.cleanEnvironment(environment).map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) }; cEnv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, program, &actions, &attr, cArgs, cEnv)
        close(out[1])
        if stdin != nil { close(input[0]) }
        guard rc == 0 else {
            if stdin != nil { close(input[1]) }
            throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EIO)
        }
        // stdin from its own thread: a program that reads nothing must not stall the output loop.
        if let bytes = stdin {
            let fd = input[1]
            Thread.detachNewThread {
                var sent = 0
                signal(SIGPIPE, SIG_IGN)
                while sent < bytes.count {
                    let n = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                    if n <= 0 { break }
                    sent += n
                }
                close(fd)
            }
        }
        let deadline = started / 1_000_000 + UInt64(timeout)
        var output: [UInt8] = []
        var cut = false, timedOut = false, killAt: UInt64?
        var buf = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let now = DispatchTime.now().uptimeNanoseconds / 1_000_000
            if !timedOut, now >= deadline { timedOut = true; kill(-pid, SIGTERM); killAt = now + 1000 }
            if let k = killAt, now >= k { kill(-pid, SIGKILL); killAt = nil }
            var p = pollfd(fd: out[0], events: Int16(POLLIN), revents: 0)
            let wait = Int32(max(1, min(200, Int64(deadline) - Int64(now))))
            guard poll(&p, 1, timedOut ? 200 : wait) >= 0 else { if errno == EINTR { continue }; break }
            if p.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                let n = read(out[0], &buf, buf.count)
                if n <= 0 { break }
                let room = max(0, outputLimit - output.count)
                output.append(contentsOf: buf[0..<min(n, room)])
                if n > room { cut = true }
            }
        }
        // The output closed: the program (and whatever kept the pipe) ended; reap it, still under the timeout.
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid || (r < 0 && errno != EINTR) { break }
            let now = DispatchTime.now().uptimeNanoseconds / 1_000_000
            if !timedOut, now >= deadline { timedOut = true; kill(-pid, SIGTERM); killAt = now + 1000 }
            if let k = killAt, now >= k { kill(-pid, SIGKILL); killAt = nil }
            usleep(10_000)
        }
        let millis = Int64((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000)
        let exited = status & 0x7f == 0, code = (status >> 8) & 0xff, sig = status & 0x7f
        let text = timedOut ? "timeout" : exited ? "exit \(code)" : "signal \(sig)"
        return Result(status: text, succeeded: !timedOut && exited && code == 0, output: String(decoding: output, as: UTF8.self), outputCut: cut, millis: millis)
    }
}
