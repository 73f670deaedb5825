import ArgumentParser
import Foundation
import TwinStorage
import Logging
import NIOSSL
import TwinSecurity
import TwinServer

/// The HTTP server's options, shared by `run` and `serve`: where to listen, TLS, who may call, and the
/// audit log. Safe by default: loopback, and elsewhere only with TLS and tokens (or `--insecure`).
struct ServerOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Address to listen on (default 127.0.0.1:9977). A non-loopback address needs --tls-cert/--tls-key, or --insecure.", valueName: "HOST:PORT"))
    var listen: String?
    @Option(name: .customLong("allowed-host"), help: ArgumentHelp("A name of this server that browsers may use in the Host header (repeatable); others are refused (DNS rebinding). localhost, the listen address and the host name are always allowed.", valueName: "NAME"))
    var allowedHosts: [String] = []
    @Option(help: ArgumentHelp("required: every request but /healthz needs a token; optional: requests without a token may read. Default: optional on loopback without TLS, else required.", valueName: "MODE"))
    var auth: String?
    @Option(name: .customLong("tls-cert"), help: ArgumentHelp("Serve HTTPS with this PEM certificate chain (with --tls-key).", valueName: "FILE"))
    var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: ArgumentHelp("The PEM private key of --tls-cert.", valueName: "FILE"))
    var tlsKey: String?
    @Option(name: .customLong("tls-client-ca"), help: ArgumentHelp("Require client certificates signed by these PEM CA certificates (mutual TLS).", valueName: "FILE"))
    var tlsClientCA: String?
    @Flag(help: "Allow plain HTTP on a non-loopback address (tokens and data then travel in clear; logged loudly).")
    var insecure = false
    @Option(name: .customLong("audit-dir"), help: ArgumentHelp("Where the audit log is kept (default DATA_DIR/audit).", valueName: "DIR"))
    var auditDir: String?
    @Option(help: ArgumentHelp("The data policy: per class of attribute (public, internal, sensitive), keep, hash or drop (docs/SECURITY.md). Default: keep everything, sensitive values sealed at rest and shown to admins only.", valueName: "FILE"))
    var policy: String?
    @Option(name: .customLong("audit-anchor"), help: ArgumentHelp("Where the audit log's head is anchored every minute (default AUDIT_DIR/anchors; better on another disk or host).", valueName: "FILE"))
    var auditAnchor: String?

    static let defaultListen = "127.0.0.1:9977"

    /// What ``prepare(_:dataDir:fileListen:logger:)`` decided.
    struct Setup {
        var host: String
        var port: Int
        var tls: TLSConfiguration?
        var audit: AuditLog
        var policy: DataPolicy
        var keys: KeyRing
        var url: String { "\(tls == nil ? "http" : "https")://\(host.contains(":") ? "[\(host)]" : host)" }
    }

    /// Seals and opens `store`'s sensitive values under the data policy and the directory's keys (a writer
    /// makes the key ring; a reader uses it when it can read it). A hub must do this before it loads its
    /// open versions, whose keys are sealed on disk.
    @discardableResult
    func attachCipher(to store: TwinStore, dataDir: String) throws -> (DataPolicy, KeyRing) {
        let dataPolicy = try policy.map(DataPolicy.load) ?? DataPolicy()
        let keys = try KeyRing(dataDir: dataDir, create: !store.isReadOnly)
        store.use(cipher: PolicyCipher(policy: dataPolicy, keys: keys))
        return (dataPolicy, keys)
    }

    /// Validates the options, applies them to `api` (Host check, anonymous role, audit log) and returns
    /// the address and TLS configuration. Refuses a non-loopback address without TLS unless `--insecure`.
    func prepare(_ api: inout TwinAPI, dataDir: String, fileListen: String? = nil, logger: Logger) throws -> Setup {
        let (dataPolicy, keys) = try attachCipher(to: api.store, dataDir: dataDir)
        api.dataPolicy = dataPolicy
        let (host, port) = try TwinHTTPServer.parseListen(listen ?? fileListen ?? Self.defaultListen)
        guard (tlsCert == nil) == (tlsKey == nil) else { throw CLIError("--tls-cert and --tls-key go together") }
        if tlsClientCA != nil, tlsCert == nil { throw CLIError("--tls-client-ca needs --tls-cert and --tls-key") }
        let tls = try tlsCert.map { try TwinHTTPServer.tlsConfiguration(certificate: $0, key: tlsKey!, clientCA: tlsClientCA) }
        let loopback = TwinHTTPServer.isLoopback(host)
        if !loopback, tls == nil {
            guard insecure else {
                throw CLIError("refusing to listen on \(host):\(port) without TLS: the twin holds every process, port and user of this host. Give --tls-cert FILE --tls-key FILE (and create tokens with `hosttwin token create`), or --insecure to serve plain HTTP anyway")
            }
            logger.critical("INSECURE: serving plain HTTP on \(host):\(port), a non-loopback address (--insecure); tokens and data travel in clear")
        }
        let required: Bool
        switch auth {
        case nil: required = !loopback || tls != nil
        case "required": required = true
        case "optional":
            required = false
            if !loopback { logger.warning("--auth optional on \(host): anyone who reaches this address may read the twin without a token") }
        case let other?: throw CLIError("--auth \(other): use required or optional")
        }
        api.access.anonymousRole = required ? nil : .reader
        api.hostCheck = HostCheck(listenHost: host, allowed: allowedHosts)
        let audit = try AuditLog(directory: auditDir ?? dataDir + "/audit", anchorPath: auditAnchor,
                                 table: api.store.sharedDatabase.map { AuditLog.Table(database: $0, chain: api.store.hubName ?? "main") })
        api.audit = audit
        logger.info("access: \(required ? "a token is required" : "requests without a token may read"); TLS \(tls == nil ? "off" : tlsClientCA == nil ? "on" : "on, client certificates required"); audit log in \(audit.table.map { "PostgreSQL (chain \($0.chain))" } ?? audit.directory)")
        return Setup(host: host, port: port, tls: tls, audit: audit, policy: dataPolicy, keys: keys)
    }
}
