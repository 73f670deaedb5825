import ArgumentParser
import TwinServer

/// The HTTP server's options, shared by `run` and `serve`.
struct ServerOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Address to listen on (default 127.0.0.1:9977: loopback unless you say otherwise).", valueName: "HOST:PORT"))
    var listen: String?
    @Option(name: .customLong("allowed-host"), help: ArgumentHelp("A name of this server that browsers may use in the Host header (repeatable); others are refused (DNS rebinding). localhost, the listen address and the host name are always allowed.", valueName: "NAME"))
    var allowedHosts: [String] = []

    static let defaultListen = "127.0.0.1:9977"

    /// The listen address: the flag, then the configuration file's, then the default.
    func address(file: String? = nil) throws -> (host: String, port: Int) {
        try TwinHTTPServer.parseListen(listen ?? file ?? Self.defaultListen)
    }

    /// Applies the options that shape every request (Host check) to the API.
    func configure(_ api: inout TwinAPI, listenHost: String) {
        api.hostCheck = HostCheck(listenHost: listenHost, allowed: allowedHosts)
    }
}
