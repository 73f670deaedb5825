import CFanotify
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One descriptor that is readable while any of several is (epoll(7), level-triggered): what a
/// change-driven collector with two sources of kernel events hands the collection loop, which waits on one
/// descriptor per collector. Owned by that collector; the members stay the caller's to read and close.
final class ReadableSet {
    let descriptor: Int32

    /// nil where epoll is missing or refuses a member.
    init?(_ members: [Int32]) {
        descriptor = hosttwin_epoll_readable(members, Int32(members.count))
        guard descriptor >= 0 else { return nil }
    }

    deinit { close(descriptor) }
}
