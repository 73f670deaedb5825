import ArgumentParser
import Foundation
import TwinCore
import TwinSecurity
import TwinServer
import TwinStorage

/// `hosttwin token create|list|revoke`: API tokens of a data directory's server.
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Create, list and revoke API tokens (admin, reader, agent).",
        discussion: "Tokens are stored in the data directory as hashes; a running server sees a new or revoked token at once. Send one as `Authorization: Bearer TOKEN`.",
        subcommands: [Create.self, List.self, Revoke.self, Rebind.self]
    )

    /// Records an admin action in the store's audit log (the data directory's, or the `main` chain in
    /// PostgreSQL with `--store`).
    static func audit(_ store: StoreOptions, _ action: String, _ detail: String) throws {
        let table = try StoreOptions.database(store.storeURL).map { AuditLog.Table(database: $0, chain: "main") }
        let log = try AuditLog(directory: store.resolvedDataDir + "/audit", table: table)
        log.append(.init(kind: "admin", action: action, role: "admin", token: nil, source: "cli (uid \(getuid()))", status: nil, detail: detail))
        log.anchorNow()
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a token; it is printed once, as the last line.",
            discussion: "reader: reads everything (sensitive values redacted). agent: writes data for its --host only. admin: everything, including tokens and the audit log."
        )
        @OptionGroup var store: StoreOptions
        @Option(help: ArgumentHelp("admin, reader, agent (a host's agent, bound with --host) or relay (a hub pushing to or following another hub).", valueName: "ROLE")) var role: String
        @Option(help: ArgumentHelp("The host an agent token may write for (agents only).", valueName: "NAME")) var host: String?
        @Option(help: ArgumentHelp("Confine a reader token to the hosts of this datacenter (at a hub: PromQL, SQL, state, label values, the graph and the dashboard answer for them only).", valueName: "NAME")) var datacenter: String?
        @Option(name: .customLong("policy"), help: ArgumentHelp("A relay token's data policy file (e.g. `drop sensitive`): a replica following with it is sent state changes as that policy lets them leave.", valueName: "FILE")) var policyFile: String?
        @Option(help: ArgumentHelp("Expire after this long, e.g. 90d, 12h (default: never).", valueName: "DURATION")) var expires: String?
        @Option(help: ArgumentHelp("A note for `token list`, e.g. who or what uses it.", valueName: "TEXT")) var name: String = ""
        @OptionGroup var output: OutputOptions

        func run() throws {
            guard let r = Role(rawValue: role) else { throw CLIError("--role \(role): use \(Role.allCases.map(\.rawValue).joined(separator: ", "))") }
            let ttl = try expires.map { text in
                do { return try TwinTime.parseDuration(text) } catch { throw CLIError("--expires: \(error)") }
            }
            let policy = try policyFile.map { path in
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CLIError("--policy \(path): cannot read it") }
                return text
            }
            let dataDir = store.resolvedDataDir
            let twin = try store.open()
            let created: (token: String, record: TokenRecord)
            do { created = try TokenAuthority(store: twin).create(role: r, host: host, name: name, expires: ttl.map { TwinTime.nowMillis() + $0 }, datacenter: datacenter, policy: policy) } catch let e as TwinError {
                throw CLIError("\(e)")
            }
            try TokenCommand.audit(store, "token.create", "id=\(created.record.id) role=\(r.rawValue)\(host.map { " host=\($0)" } ?? "")\(datacenter.map { " datacenter=\($0)" } ?? "")")
            if output.json {
                struct Out: Encodable { var token: String; var info: TokenJSON }
                try printJSON(Out(token: created.token, info: TokenJSON(created.record)))
            } else {
                var info = "created token \(created.record.id) (role \(r.rawValue)"
                if let host { info += ", host \(host)" }
                if let datacenter { info += ", datacenter \(datacenter) only" }
                if policyFile != nil { info += ", with its data policy" }
                info += created.record.expires.map { ", expires \(TwinTime.rfc3339($0))" } ?? ", no expiry"
                print(info + "); it is shown only now:")
                print(created.token)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (never their secrets).")
        @OptionGroup var store: StoreOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            let tokens = try store.openForReading().tokens().map(TokenJSON.init)
            if output.json { try printJSON(tokens); return }
            guard !tokens.isEmpty else { print("no tokens; create one with `hosttwin token create --role reader`"); return }
            printTable(["ID", "ROLE", "HOST", "DATACENTER", "CREATED", "EXPIRES", "REVOKED", "NAME"],
                       tokens.map { [$0.id, $0.role, $0.host ?? "", $0.datacenter ?? "", $0.created, $0.expires ?? "never", $0.revoked ?? "", $0.name] })
        }
    }

    struct Rebind: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Bind an agent token to another host (a host re-installed with a new agent, or renamed).",
                                                        discussion: "The token may push only for the new host from its next request; the change is audited. Revoke the host's old agent token if it should push no more.")
        @OptionGroup var store: StoreOptions
        @Argument(help: ArgumentHelp("The agent token's ID (from `token list`).", valueName: "ID")) var id: String
        @Option(help: ArgumentHelp("The host it may push for from now on.", valueName: "NAME")) var host: String

        func run() throws {
            let dataDir = store.resolvedDataDir
            guard try store.open().rebindToken(id: id, host: host) else {
                throw CLIError("no active agent token \(id) in \(dataDir) (`hosttwin token list` shows them)")
            }
            try TokenCommand.audit(store, "token.rebind", "id=\(id) host=\(host)")
            print("agent token \(id) now pushes for host \(host)")
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token by its ID; servers refuse it from the next request.")
        @OptionGroup var store: StoreOptions
        @Argument(help: ArgumentHelp("The token's ID (from `token list`).", valueName: "ID")) var id: String

        func run() throws {
            let dataDir = store.resolvedDataDir
            guard try store.open().revokeToken(id: id, at: TwinTime.nowMillis()) else {
                throw CLIError("no active token \(id) in \(dataDir) (`hosttwin token list` shows them)")
            }
            try TokenCommand.audit(store, "token.revoke", "id=\(id)")
            print("revoked token \(id)")
        }
    }
}
