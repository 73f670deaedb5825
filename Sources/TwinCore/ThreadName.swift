import Glibc

/// Names the calling thread as `top -H`, `ps -L` and `perf` show it (the kernel keeps 15 bytes). Foundation's
/// `Thread.name` does not reach the kernel on Linux when set before `start()`, so a thread of ours names
/// itself first thing; otherwise it carries the name of the dispatch thread that started it.
public func nameCurrentThread(_ name: String) {
    // A GNU extension the Glibc module leaves out; looked up once.
    typealias SetName = @convention(c) (pthread_t, UnsafePointer<CChar>) -> Int32
    guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "pthread_setname_np") else { return }
    _ = String(decoding: name.utf8.prefix(15), as: UTF8.self).withCString { unsafeBitCast(sym, to: SetName.self)(pthread_self(), $0) }
}
