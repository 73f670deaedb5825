import Foundation
import TwinCore
import TwinQuery
import TwinStorage
import Yams

/// The admin-owned alerting configuration (`run --alerting FILE`): where notifications go, and the
/// allow-list of remediation actions rules may name. docs/RULES.md describes it.
///
/// ```yaml
/// notify:
///   - alertmanager: http://127.0.0.1:9093          # Alertmanager's API v2, as Prometheus sends
///   - webhook: https://hooks.example/alerts        # Alertmanager's webhook JSON
///   - log: true
///   - command: [/usr/local/bin/page, --team, ops]  # argv, never a shell; the alerts' JSON on stdin
/// resend_every: 1m
/// actions:
///   clear_cache:
///     command: [/usr/bin/find, /var/cache/app, -mindepth, 1, -delete]
///     timeout: 30s
///     cooldown: 5m
///     max_per_hour: 4
///     user: nobody
///     dry_run: false
///     from_hub: true     # an agent: hubs may dispatch this action to this host
///   restart_web:
///     dispatch: agent    # a hub: run by the agent of the alert's host, from the agent's own allow-list
/// ```
public struct AlertingConfig: Sendable {
    /// One place notifications go.
    public enum Channel: Sendable, Equatable {
        /// An Alertmanager (base URL): alerts POSTed to `/api/v2/alerts`, firing ones resent every `resendEvery`.
        case alertmanager(URL)
        /// A webhook receiving Alertmanager's webhook JSON (version 4), once per change.
        case webhook(URL)
        /// The twin's own log.
        case log
        /// An argv command run with the alerts' webhook JSON on stdin.
        case command([String])

        public var name: String {
            switch self {
            case .alertmanager(let u): return "alertmanager \(u.absoluteString)"
            case .webhook(let u): return "webhook \(u.absoluteString)"
            case .log: return "log"
            case .command(let a): return "command \(a[0])"
            }
        }
    }

    /// A remediation action of the allow-list.
    public struct Action: Sendable, Equatable {
        public var name: String
        /// Absolute path of the program, then its arguments; run directly, never through a shell.
        public var argv: [String]
        /// Killed (SIGTERM, then SIGKILL a second later) after this long (ms).
        public var timeout: Int64 = 30_000
        /// At least this long between two runs for the same alert (ms).
        public var cooldown: Int64 = 300_000
        /// At most this many runs an hour, over all alerts.
        public var maxPerHour = 6
        /// Run as this user (root only; `setpriv` drops to it); nil: as the twin runs.
        public var user: String?
        /// Record what would run without running it.
        public var dryRun = false
        /// A hub's action: not run here but dispatched to the agent of the alert's `host`, which runs its
        /// own allow-list's action of this name (``fromHub``). `argv` is empty.
        public var dispatch = false
        /// An agent's action that hubs may dispatch to it; without it an agent refuses the dispatch.
        public var fromHub = false

        public init(name: String, argv: [String], timeout: Int64 = 30_000, cooldown: Int64 = 300_000) {
            (self.name, self.argv, self.timeout, self.cooldown) = (name, argv, timeout, cooldown)
        }
    }

    /// An inhibition: while an alert matching `source` fires, alerts matching `target` with the same values
    /// of `equal` are neither notified nor remediated (Alertmanager's `inhibit_rules`).
    public struct Inhibition: Sendable {
        public var source: [Matcher]
        public var target: [Matcher]
        public var equal: [String]
    }

    /// The built-in inhibition: a host that stopped reporting inhibits its other alerts.
    public static let hostSilentInhibits = Inhibition(source: (try? AlertSuppression.matchers(["alertname=HostSilent"])) ?? [],
                                                      target: (try? AlertSuppression.matchers(["alertname!=HostSilent"], everything: true)) ?? [], equal: ["host"])

    public var channels: [Channel] = []
    public var inhibitions: [Inhibition] = [AlertingConfig.hostSilentInhibits]
    /// How often firing alerts are sent again to Alertmanagers (ms).
    public var resendEvery: Int64 = 60_000
    public var actions: [String: Action] = [:]

    public init() {}

    public static func load(path: String) throws -> AlertingConfig {
        guard let data = FileManager.default.contents(atPath: path), data.count <= ConfigTree.maxBytes, let text = String(data: data, encoding: .utf8) else {
            throw RuleFileErrors(errors: [ConfigError(file: path, line: 0, column: 0, message: "cannot read the file (missing, over 4 MiB or not UTF-8)")])
        }
        return try parse(text, source: path)
    }

    /// Characters that mean something to a shell: refused in actions' argv, although none is run through
    /// one, so that a command copied from a shell line is not silently taken word for word.
    static let shellCharacters = Set("|&;<>()$`\\\"'*?[]#~{}\n")

    public static func parse(_ text: String, source: String) throws -> AlertingConfig {
        var tree = ConfigTree(file: source)
        var c = AlertingConfig()
        guard let root = try tree.root(text) else { return c }
        var errors: [ConfigError] = []
        // Errors are collected entry by entry; nested entries get the tree passed down (one access at a time).
        func attempt(_ tree: inout ConfigTree, _ body: (inout ConfigTree) throws -> Void) {
            do { try body(&tree) } catch let e as ConfigError { errors.append(e) } catch { errors.append(tree.error(at: nil, "\(error)")) }
        }
        attempt(&tree) { tree in
            for (key, _, value) in try tree.mapping(root, "alerting configuration", allowed: ["notify", "resend_every", "actions", "inhibit"]) {
                switch key {
                case "notify":
                    for n in try tree.sequence(value, "notify") {
                        attempt(&tree) { tree in c.channels.append(try readChannel(n, &tree)) }
                    }
                case "inhibit":
                    for n in try tree.sequence(value, "inhibit") {
                        attempt(&tree) { tree in c.inhibitions.append(try readInhibition(n, &tree)) }
                    }
                case "resend_every":
                    c.resendEvery = try tree.duration(value, "resend_every")
                    guard c.resendEvery >= 1000 else { throw tree.error(at: value, "resend_every must be at least 1s") }
                default:
                    for (name, kn, an) in try tree.stringKeyedMapping(value, "actions") {
                        attempt(&tree) { tree in
                            guard RuleFileReader.isLabelName(name) else { throw tree.error(at: kn, "action names are words (letters, digits, _): '\(name)'") }
                            c.actions[name] = try readAction(name, an, &tree)
                        }
                    }
                }
            }
        }
        if !errors.isEmpty { throw RuleFileErrors(errors: errors) }
        return c
    }

    static func readChannel(_ node: Node, _ tree: inout ConfigTree) throws -> Channel {
        let fields = try tree.mapping(node, "notify entry", allowed: ["alertmanager", "webhook", "log", "command"])
        guard fields.count == 1, let (key, _, value) = fields.first else { throw tree.error(at: node, "a notify entry names one of alertmanager, webhook, log, command") }
        switch key {
        case "alertmanager", "webhook":
            let text = try tree.string(value, key)
            guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw tree.error(at: value, "\(key): '\(text)' is not an http(s) URL")
            }
            return key == "webhook" ? .webhook(url) : .alertmanager(url)
        case "log":
            guard try tree.bool(value, "log") else { throw tree.error(at: value, "log: leave the entry out rather than set it false") }
            return .log
        default:
            return .command(try argv(value, "command", &tree))
        }
    }

    static func readInhibition(_ node: Node, _ tree: inout ConfigTree) throws -> Inhibition {
        var i = Inhibition(source: [], target: [], equal: [])
        for (key, _, value) in try tree.mapping(node, "inhibit entry", allowed: ["source_matchers", "target_matchers", "equal"]) {
            let items = try tree.sequence(value, key).map { try tree.string($0, key) }
            switch key {
            case "equal": i.equal = items
            default:
                do {
                    let m = try AlertSuppression.matchers(items, everything: key == "target_matchers")
                    if key == "source_matchers" { i.source = m } else { i.target = m }
                } catch { throw tree.error(at: value, "\(key): \(error)") }
            }
        }
        guard !i.source.isEmpty, !i.target.isEmpty else { throw tree.error(at: node, "an inhibit entry needs source_matchers and target_matchers") }
        return i
    }

    /// The alerts (by label set) kept from notifications and actions at `t`: silenced, or inhibited by a
    /// firing source alert.
    public func suppressed(_ alerts: [Alert], silences: [SilenceRecord], at t: Int64) -> Set<Labels> {
        var out = Set<Labels>()
        let firing = alerts.filter { $0.state == .firing }
        for a in alerts {
            if AlertSuppression.silenced(a.labels, by: silences, at: t) != nil { out.insert(a.labels); continue }
            for inh in inhibitions where inh.target.allSatisfy({ $0.matches(a.labels[$0.name] ?? "") }) {
                let inhibited = firing.contains { src in
                    src.labels != a.labels && inh.source.allSatisfy { $0.matches(src.labels[$0.name] ?? "") }
                        && inh.equal.allSatisfy { src.labels[$0] == a.labels[$0] }
                }
                if inhibited { out.insert(a.labels); break }
            }
        }
        return out
    }

    static func readAction(_ name: String, _ node: Node, _ tree: inout ConfigTree) throws -> Action {
        var a = Action(name: name, argv: [])
        var hasCommand = false
        var local: [String] = [] // keys that only mean something where the command runs
        for (key, _, value) in try tree.mapping(node, "action '\(name)'", allowed: ["command", "timeout", "cooldown", "max_per_hour", "user", "dry_run", "dispatch", "from_hub"]) {
            if ["command", "timeout", "user", "from_hub"].contains(key) { local.append(key) }
            switch key {
            case "command": a.argv = try argv(value, "action '\(name)' command", &tree); hasCommand = true
            case "dispatch":
                guard try tree.string(value, "dispatch") == "agent" else { throw tree.error(at: value, "dispatch: the only place an action is dispatched to is 'agent' (the agent of the alert's host)") }
                a.dispatch = true
            case "from_hub": a.fromHub = try tree.bool(value, "from_hub")
            case "timeout":
                a.timeout = try tree.duration(value, "timeout")
                guard a.timeout >= 100, a.timeout <= 3_600_000 else { throw tree.error(at: value, "timeout: from 100ms to 1h") }
            case "cooldown": a.cooldown = try tree.duration(value, "cooldown")
            case "max_per_hour":
                a.maxPerHour = try tree.integer(value, "max_per_hour")
                guard a.maxPerHour >= 1 else { throw tree.error(at: value, "max_per_hour must be at least 1") }
            case "user":
                let u = try tree.string(value, "user")
                guard !u.isEmpty, u.allSatisfy({ $0.isLetter || $0.isNumber || "_-.".contains($0) }), getpwnam(u) != nil else {
                    throw tree.error(at: value, "user: no such user '\(u)'")
                }
                a.user = u
            default: a.dryRun = try tree.bool(value, "dry_run")
            }
        }
        if a.dispatch {
            guard local.isEmpty else {
                throw tree.error(at: node, "action '\(name)' is dispatched to the agent, which runs its own allow-list's '\(name)': \(local.joined(separator: ", ")) belong in the agent's configuration")
            }
        } else if !hasCommand {
            throw tree.error(at: node, "action '\(name)' needs 'command' (an argv list), or 'dispatch: agent' at a hub")
        }
        return a
    }

    /// An argv list: an absolute program path that exists and is executable, then plain arguments.
    static func argv(_ node: Node, _ what: String, _ tree: inout ConfigTree) throws -> [String] {
        if case .scalar = node { throw tree.error(at: node, "\(what) must be a list [program, arg, ...]: commands are never run through a shell") }
        let items = try tree.sequence(node, what).map { try tree.string($0, what) }
        guard let program = items.first else { throw tree.error(at: node, "\(what) is empty") }
        guard program.hasPrefix("/") else { throw tree.error(at: node, "\(what): '\(program)' must be an absolute path (no PATH lookup)") }
        guard access(program, X_OK) == 0 else { throw tree.error(at: node, "\(what): '\(program)' is not an executable file") }
        for arg in items {
            if let bad = arg.first(where: { shellCharacters.contains($0) }) {
                throw tree.error(at: node, "\(what): '\(arg)' holds the shell character '\(bad == "\n" ? "\\n" : String(bad))'; commands run without a shell, so give each argument as it should arrive")
            }
            guard arg.utf8.count <= 4096 else { throw tree.error(at: node, "\(what): an argument over 4 KiB") }
        }
        guard items.count <= 64 else { throw tree.error(at: node, "\(what): more than 64 arguments") }
        return items
    }
}

extension ConfigTree {
    /// A mapping with free-form keys (names) and any values.
    mutating func stringKeyedMapping(_ node: Node, _ what: String) throws -> [(String, Node, Node)] {
        try visit(node)
        if case .scalar(let s) = node, s.string.isEmpty || s.tag.description.hasSuffix(":null") { return [] }
        guard case .mapping(let m) = node else { throw error(at: node, "\(what) must be a mapping of names") }
        var out: [(String, Node, Node)] = []
        var seen = Set<String>()
        for (k, v) in m {
            let key = try string(k, "\(what) name")
            guard seen.insert(key).inserted else { throw error(at: k, "\(what): '\(key)' given twice") }
            out.append((key, k, v))
        }
        return out
    }
}
