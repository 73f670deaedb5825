import Foundation
import TwinCore

/// The data directory's writer lock (`DIR/writer.lock`, an `flock`): one writer per store. The kernel
/// releases it when the process dies, so a `kill -9` never leaves a stale lock. The file holds the
/// holder's pid, which the refusal quotes.
final class DirectoryLock {
    private var fd: Int32

    private init(fd: Int32) { self.fd = fd }

    deinit { release() }

    /// Takes the lock of `dataDir`, or throws naming the writer that holds it.
    static func acquire(dataDir: String) throws -> DirectoryLock {
        let path = dataDir + "/writer.lock"
        // Never follow a link planted in the directory: the lock file is written (the writer's pid).
        let fd = Foundation.open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            if errno == ELOOP { throw TwinError.unavailable("\(path) is a symbolic link; refusing to follow it (remove it)") }
            throw TwinError.unavailable("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8)).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
            close(fd)
            throw TwinError.unavailable("another HostTwin writer\(holder.isEmpty ? "" : " (pid \(holder))") is using \(dataDir); stop it or choose another --data-dir")
        }
        _ = ftruncate(fd, 0)
        let pid = Array("\(getpid())\n".utf8)
        _ = pid.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        return DirectoryLock(fd: fd)
    }

    /// Gives the lock up (idempotent).
    func release() {
        if fd >= 0 { close(fd) }
        fd = -1
    }
}
