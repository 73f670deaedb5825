import Foundation
import Hummingbird
import Logging
import TwinCore

/// The HTTP face of a twin (Hummingbird): ``TwinAPI`` behind one responder.
public enum TwinHTTPServer {
    /// Parses `HOST:PORT` (`[::1]:9977` for IPv6), refusing anything else with a clear message.
    public static func parseListen(_ text: String) throws -> (host: String, port: Int) {
        var host: Substring
        var portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw TwinError.badInput("--listen \(text): expected [IPv6]:PORT")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw TwinError.badInput("--listen \(text): expected HOST:PORT, e.g. 127.0.0.1:9977") }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard let port = Int(portText), (0...65535).contains(port) else { throw TwinError.badInput("--listen \(text): port must be 0-65535") }
        if host.isEmpty { host = "127.0.0.1" }
        return (String(host), port)
    }

    /// Builds the application; it is a `Service`, run inside the process's service group.
    public static func application(api: TwinAPI, host: String, port: Int, logger: Logger,
                                   onServerRunning: (@Sendable (Int) async -> Void)? = nil) -> some ApplicationProtocol {
        Application(
            responder: CallbackResponder<BasicRequestContext> { request, _ in await api.respond(to: request) },
            configuration: .init(address: .hostname(host, port: port), serverName: "hosttwin"),
            onServerRunning: { channel in await onServerRunning?(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }
}
