import ArgumentParser
import Foundation
import TwinServer

/// `--url` and its credentials: ask a running server instead of reading a store.
struct RemoteOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Ask the server at this URL (http://HOST:PORT or https://HOST:PORT) instead of reading a store.", valueName: "URL"))
    var url: String?
    @OptionGroup var credentials: ClientCredentials

    /// The client, or nil without `--url`.
    func client() throws -> RemoteTwin? {
        guard let url else {
            if credentials.ca != nil || credentials.tokenFile != nil || credentials.clientCert != nil { throw CLIError("--ca, --token-file and --client-cert go with --url") }
            return nil
        }
        return try credentials.client(url: url)
    }

    /// The token to send: the file's contents, else `$HOSTTWIN_TOKEN`, else none.
    static func token(file: String?) throws -> String? {
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw CLIError("--token-file \(file): cannot read it") }
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return ProcessInfo.processInfo.environment["HOSTTWIN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `GET path` on the server: the body of a 200 answer, else a CLI error with the server's message.
    static func fetch(_ client: RemoteTwin, _ path: String) throws -> Data {
        let r: RemoteTwin.Response
        do { r = try client.get(path) } catch { throw CLIError("\(error)") }
        guard r.status == 200 else {
            let message = (try? JSONSerialization.jsonObject(with: Data(r.body))) .flatMap { ($0 as? [String: Any])?["error"] as? String } ?? r.text
            throw CLIError("the server answered HTTP \(r.status): \(message)")
        }
        return Data(r.body)
    }
}

/// How a client proves itself to a server and which server it trusts: `--ca`, `--token-file`,
/// `--client-cert`/`--client-key` (queries with `--url`, and an agent's pushes).
struct ClientCredentials: ParsableArguments {
    @Option(help: ArgumentHelp("Trust only these PEM CA certificates for the server's certificate (a private CA).", valueName: "FILE"))
    var ca: String?
    @Option(name: .customLong("token-file"), help: ArgumentHelp("A file holding the token to send (default $HOSTTWIN_TOKEN).", valueName: "FILE"))
    var tokenFile: String?
    @Option(name: .customLong("client-cert"), help: ArgumentHelp("A PEM client certificate for servers that require one (with --client-key).", valueName: "FILE"))
    var clientCert: String?
    @Option(name: .customLong("client-key"), help: ArgumentHelp("The PEM key of --client-cert.", valueName: "FILE"))
    var clientKey: String?

    /// A client of `url` with these credentials.
    func client(url: String) throws -> RemoteTwin {
        var c = try RemoteTwin(url: url)
        c.caFile = ca
        (c.clientCertificate, c.clientKey) = (clientCert, clientKey)
        c.token = try RemoteOptions.token(file: tokenFile)
        return c
    }
}
