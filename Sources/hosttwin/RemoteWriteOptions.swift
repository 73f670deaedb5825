import ArgumentParser
import Logging
import TwinRuntime
import TwinStorage

/// `--remote-write URL` and its settings, for `run` and `serve`: Prometheus remote_write 1.0 out.
struct RemoteWriteOptions: ParsableArguments {
    @Option(name: .customLong("remote-write"), help: ArgumentHelp("Send every series to this Prometheus remote_write receiver, e.g. http://127.0.0.1:9090/api/v1/write (repeatable).", valueName: "URL"))
    var urls: [String] = []
    @Option(name: .customLong("remote-write-token-file"), help: ArgumentHelp("A file holding a bearer token for the --remote-write receivers.", valueName: "FILE"))
    var tokenFile: String?
    @Option(name: .customLong("remote-write-ca"), help: ArgumentHelp("Trust only these PEM CA certificates for https --remote-write receivers.", valueName: "FILE"))
    var ca: String?
    @Option(name: .customLong("remote-write-shards"), help: ArgumentHelp("Connections sending at once to each receiver (1-64).", valueName: "N"))
    var shards: Int = 4

    /// The receivers, checked before anything is opened (a refused option leaves no data directory behind).
    func destinations() throws -> [RemoteWriteSender.Destination] {
        guard !urls.isEmpty else {
            if tokenFile != nil || ca != nil { throw CLIError("--remote-write-token-file and --remote-write-ca need --remote-write URL") }
            return []
        }
        guard (1...64).contains(shards) else { throw CLIError("--remote-write-shards must be 1 to 64") }
        guard Set(urls).count == urls.count else { throw CLIError("--remote-write: the same URL twice") }
        let token: String?
        if let tokenFile {
            guard let t = try RemoteOptions.token(file: tokenFile), !t.isEmpty else { throw CLIError("--remote-write-token-file \(tokenFile) is empty") }
            token = t
        } else { token = nil }
        return try urls.map { url in
            do { return try .init(url: url, token: token, caFile: ca) } catch { throw CLIError("\(error)") }
        }
    }

    /// One sender per destination over `store` (a hub's when `hub`).
    func senders(_ destinations: [RemoteWriteSender.Destination], store: TwinStore, hub: Bool, logger: Logger) -> [RemoteWriteSender] {
        var settings = RemoteWriteSender.Settings()
        settings.shards = shards
        return destinations.map { RemoteWriteSender(store: store, destination: $0, hub: hub, settings: settings, logger: logger) }
    }
}
