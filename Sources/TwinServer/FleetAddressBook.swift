import Synchronization
import TwinAnalytics
import TwinCore
import TwinSecurity
import TwinStorage

/// Which fleet host uses which address, so a connection's peer is resolved to a host **before** a data
/// policy hashes or drops its remote address (after, nothing can resolve it): wherever a policy rewrites
/// connections — an agent's `--policy`, a relay's `--forward-policy`, a follower token's policy — the
/// connection first gets a `remote_host` attribute naming the peer, which the dependency graph uses
/// (``DependencyGraph``).
///
/// A hub's book is its own state's addresses (``DependencyGraph/addressOwners(_:)``, refreshed at most
/// every 30 s when asked) and what its upstream hub knows (``learn(upstream:)``: relays ask
/// `GET /api/v1/sync/addresses` there), so a relay resolves peers in other datacenters too. An agent's book
/// is its hub's.
public final class FleetAddressBook: Sendable {
    private struct State {
        var own: [String: String] = [:]
        var ownAt: Int64?
        var upstream: [String: String] = [:]
    }
    private let state = Mutex(State())
    private let store: TwinStore?
    static let refreshMillis: Int64 = 30_000

    /// A book of `store`'s own hosts (a hub's), or, without one, only of what it learns.
    public init(store: TwinStore? = nil) {
        self.store = store
    }

    /// Every address the book resolves: the store's own hosts first, then what the upstream knows.
    public func addresses() -> [String: String] {
        refreshIfDue()
        return state.withLock { s in s.own.merging(s.upstream) { own, _ in own } }
    }

    /// What a hub upstream (or an agent's hub) resolves.
    /// Most addresses learnt from an upstream hub, and longest address or host name: a map beyond them
    /// (a broken or hostile hub) is ignored.
    public static let maxUpstream = 1 << 16, maxName = 255

    /// Takes the upstream hub's map of addresses to hosts; returns false (keeping the previous map) when
    /// it is too large or holds an empty or overlong address or name.
    @discardableResult
    public func learn(upstream: [String: String]) -> Bool {
        guard upstream.count <= Self.maxUpstream,
              upstream.allSatisfy({ !$0.key.isEmpty && $0.key.utf8.count <= Self.maxName && !$0.value.isEmpty && $0.value.utf8.count <= Self.maxName })
        else { return false }
        state.withLock { $0.upstream = upstream }
        return true
    }

    private func refreshIfDue() {
        guard let store else { return }
        let now = TwinTime.nowMillis()
        guard state.withLock({ $0.ownAt.map { now - $0 >= Self.refreshMillis } ?? true }) else { return }
        let owners = (try? store.state(at: now, kinds: [.listeningPorts, .connections])).map { DependencyGraph.addressOwners(FleetState($0)) }
        state.withLock { s in
            if let owners { s.own = owners }
            s.ownAt = now
        }
    }

    /// Names each connection's peer (`remote_host`) where `policy` would hash or drop its remote address
    /// and the book (or loopback: the connection's own host, `localHost` or its `host` attribute) resolves it.
    public func annotate(_ entities: inout [Entity], policy: DataPolicy, localHost: String? = nil) {
        guard policy.action(.connections, policy.classOf(.connections, "remote_address")) != .keep,
              entities.contains(where: { $0.kind == .connections }) else { return }
        refreshIfDue() // once per batch, and one lock, not per connection
        state.withLock { s in
            for i in entities.indices where entities[i].kind == .connections && entities[i].attributes["remote_host"] == nil {
                guard case .string(let address)? = entities[i].attributes["remote_address"] else { continue }
                let own = localHost ?? entities[i].attributes["host"]?.description
                if let peer = DependencyGraph.isLoopback(address) ? own : s.own[address] ?? s.upstream[address] {
                    entities[i].attributes["remote_host"] = .string(peer)
                }
            }
        }
    }
}
