import CPerfEvent
import Foundation

/// Reads tracefs files where tracefs is not mounted (this VM boots without it; systemd mounts it): on a
/// thread of its own, which moves into a mount namespace of its own with every mount private, mounts tracefs
/// read-only there, reads the files and ends. The host's mount table never shows it, and the rest of the
/// process stays in the host's namespace. What is read (a tracepoint's id and format) stays valid for the
/// boot: perf_event_open(2) takes the id without tracefs mounted. Needs CAP_SYS_ADMIN; nil without it.
enum PrivateTracefs {
    /// Where tracefs is mounted inside the private namespace: the directory the kernel provides for it.
    static let mountPoint = "/sys/kernel/tracing"

    /// The files at `paths` (relative to tracefs' root), each nil when unreadable; nil when tracefs could
    /// not be mounted privately, or the thread did not finish within `timeout` seconds. `whileMounted` runs
    /// on the thread while tracefs is mounted (a test looks at the mount tables then).
    static func read(_ paths: [String], timeout: Double = 2, whileMounted: (@Sendable () -> Void)? = nil) -> [String?]? {
        let result = ResultBox()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            result.value = readInPrivateNamespace(paths, whileMounted)
            done.signal()
        }
        thread.name = "hosttwin-tracefs"
        thread.start()
        guard done.wait(timeout: .now() + timeout) == .success else { return nil }
        return result.value
    }

    /// Runs on a thread that ends right after: the namespace and its mount go with it.
    private static func readInPrivateNamespace(_ paths: [String], _ whileMounted: (() -> Void)?) -> [String?]? {
        guard hosttwin_enter_private_mounts() == 0, hosttwin_mount_tracefs(mountPoint) == 0 else { return nil }
        defer { umount(mountPoint) }
        whileMounted?()
        let reader = FileReader(capacity: 16 * 1024)
        return paths.map { reader.read(mountPoint + "/" + $0) }
    }

    /// The thread's answer, written before it signals and read after the wait.
    private final class ResultBox: @unchecked Sendable {
        var value: [String?]?
    }
}
