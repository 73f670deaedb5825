import Foundation
import Hummingbird
import Logging
import TwinCore

/// The HTTP face of a running twin (Hummingbird). This first slice serves `/healthz` and
/// `/api/v1/summary`; the Prometheus-compatible API comes with the server issue.
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
    public static func application(live: LiveTwin, host: String, port: Int, logger: Logger,
                                   onServerRunning: (@Sendable (Int) async -> Void)? = nil) -> some ApplicationProtocol {
        let router = Router()
        router.get("/healthz") { _, _ -> HealthResponse in
            let last = live.lastTick
            let now = TwinTime.nowMillis()
            return HealthResponse(status: last == nil ? "starting" : "ok", lastTick: last.map(TwinTime.rfc3339),
                                  ticks: live.ticks, uptimeSeconds: Double(now - live.startedAt) / 1000,
                                  collectors: live.health)
        }
        router.get("/api/v1/summary") { _, _ -> SummaryResponse in
            guard let s = live.summary() else { throw HTTPError(.serviceUnavailable, message: "no observation yet; the first tick is under way") }
            return SummaryResponse(host: live.host, summary: s)
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "hosttwin"),
            onServerRunning: { channel in await onServerRunning?(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }
}

/// `/healthz`: whether ticks are being committed, and each collector's health.
struct HealthResponse: ResponseEncodable {
    var status: String
    var lastTick: String?
    var ticks: Int64
    var uptimeSeconds: Double
    var collectors: [CollectorHealth]
    enum CodingKeys: String, CodingKey { case status, lastTick = "last_tick", ticks, uptimeSeconds = "uptime_seconds", collectors }
}

/// `/api/v1/summary`: host facts and the one-screen summary of now.
struct SummaryResponse: ResponseEncodable {
    var host: [String: AttributeValue]
    var summary: HostSummary
}
