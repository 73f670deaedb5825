import Glibc
import TwinCore

/// node_exporter's time collector: the system clock (`node_time_seconds`, the tick's time), the local
/// time zone's offset, and the available and current clock sources of
/// `/sys/devices/system/clocksource` (read once a minute).
public final class TimeCollector: Collector {
    public let name = "time"
    private var clocksources: [(Labels, Labels?)] = []
    private var clocksourcesRead: Int64?
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let now = ctx.observation.timestamp
        ctx.observation.add("node_time_seconds", .empty, Double(now) / 1000)
        var seconds = time_t(now / 1000)
        var tm = tm()
        if localtime_r(&seconds, &tm) != nil {
            let zone = tm.tm_zone.map { String(cString: $0) } ?? "UTC"
            ctx.observation.add("node_time_zone_offset_seconds", Labels(["time_zone": zone]), Double(tm.tm_gmtoff))
        }
        if clocksourcesRead.map({ now - $0 >= 60_000 || now < $0 }) ?? true {
            clocksourcesRead = now
            clocksources = []
            for i in 0..<64 {
                let dir = ctx.paths.sys + "/devices/system/clocksource/clocksource\(i)/"
                guard let available = ctx.reader.read(dir + "available_clocksource") else { break }
                let current = ctx.reader.read(dir + "current_clocksource").map { String($0.trimmingSuffixNewlines) }
                for source in available.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
                    let l = Labels(["clocksource": String(source), "device": String(i)])
                    clocksources.append((l, current == String(source) ? l : nil))
                }
            }
        }
        for (available, current) in clocksources {
            ctx.observation.add("node_time_clocksource_available_info", available, 1)
            if let current { ctx.observation.add("node_time_clocksource_current_info", current, 1) }
        }
        return .ok
    }
}
