import Foundation
import TwinCore

/// systemd units, when systemd is PID 1 (`/run/systemd/system` exists, as `sd_booted()` checks), from
/// `systemctl list-units --all --plain --no-legend --no-pager` run directly (argv, no shell). On hosts
/// without systemd the collector reports "not available".
public final class ServiceCollector: Collector {
    public let name = "services"
    /// The systemctl binary; tests may point it elsewhere.
    public var systemctl = "/usr/bin/systemctl"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        guard ctx.reader.status(ctx.paths.root("/run/systemd/system")) != nil else {
            return .noData("not available: systemd is not running on this host")
        }
        guard ctx.paths.root == "/" else { return .noData("not available: systemctl cannot inspect another root") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: systemctl)
        p.arguments = ["list-units", "--all", "--plain", "--no-legend", "--no-pager"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return .noData("not available: cannot run \(systemctl): \(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let units = parseSystemctlUnits(String(decoding: data, as: UTF8.self))
        var failed = 0.0
        ctx.observation.set(.services, units.map { u in
            if u.active == "failed" { failed += 1 }
            return Entity(kind: .services, key: u.name, attributes: [
                "name": .string(u.name), "load": .string(u.load), "active": .string(u.active),
                "sub": .string(u.sub), "description": .string(u.description),
            ])
        })
        ctx.observation.add("hosttwin_services_failed", .empty, failed)
        return .ok
    }
}
