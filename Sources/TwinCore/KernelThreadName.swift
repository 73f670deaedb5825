/// A kernel worker's identity: `kworker/0:2-events` (or `+events`) → `kworker/0:2`; other names unchanged.
/// The kernel writes `-queue` for the work queue a worker served last and `+queue` while it serves it, so
/// the suffix changes by the second. The twin and `bench fidelity`'s ground truth both key workers by this.
public func stableKernelThreadName(_ comm: String) -> String {
    guard comm.hasPrefix("kworker/"), let cut = comm.firstIndex(where: { $0 == "-" || $0 == "+" }) else { return comm }
    return String(comm[..<cut])
}
