import CTimex
import TwinCore

/// node_exporter's timex collector: the kernel clock discipline as adjtimex(2) reports it (offset,
/// frequency adjustment, error bounds, status, PPS figures) and whether the clock is synchronised.
/// Reads the running kernel, so it reports only where the paths are this host's.
public final class TimexCollector: Collector {
    public let name = "timex"
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        guard ctx.paths.proc == "/proc" else { return .noData("adjtimex(2) describes this host only") }
        var t = timex()
        let state = adjtimex(&t)
        guard state >= 0 else { return .noData("adjtimex(2) failed") }
        // Offsets are microseconds, or nanoseconds with STA_NANO; frequencies are ppm with a 16-bit fraction.
        let divisor = t.status & Int32(STA_NANO) != 0 ? 1e9 : 1e6
        let ppm16 = 65536.0 * 1e6
        func gauge(_ name: String, _ v: Double) { ctx.observation.add("node_timex_" + name, .empty, v) }
        func counter(_ name: String, _ v: Double) { ctx.observation.counter("node_timex_" + name, .empty, v) }
        gauge("offset_seconds", Double(t.offset) / divisor)
        gauge("frequency_adjustment_ratio", 1 + Double(t.freq) / ppm16)
        gauge("maxerror_seconds", Double(t.maxerror) / 1e6)
        gauge("estimated_error_seconds", Double(t.esterror) / 1e6)
        gauge("status", Double(t.status))
        gauge("loop_time_constant", Double(t.constant))
        gauge("tick_seconds", Double(t.tick) / 1e6)
        gauge("pps_frequency_hertz", Double(t.ppsfreq) / ppm16)
        gauge("pps_jitter_seconds", Double(t.jitter) / divisor)
        gauge("pps_shift_seconds", Double(t.shift))
        gauge("pps_stability_hertz", Double(t.stabil) / ppm16)
        counter("pps_jitter_total", Double(t.jitcnt))
        counter("pps_calibration_total", Double(t.calcnt))
        counter("pps_error_total", Double(t.errcnt))
        counter("pps_stability_exceeded_total", Double(t.stbcnt))
        gauge("tai_offset_seconds", Double(t.tai))
        gauge("sync_status", state == TIME_ERROR ? 0 : 1)
        return .ok
    }
}
