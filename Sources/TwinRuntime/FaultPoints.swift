import Foundation
import Synchronization
import TwinCore

/// Crashes injected at named points of the sync protocol, for the fleet harness (scripts/fleet-test.sh):
/// `HOSTTWIN_FAULTS="hub.after_apply=0.02,agent.mid_frame=0.01"` makes the process exit at once (status
/// 86, no cleanup: as a kill -9 would) at that point with that probability, drawn from
/// `HOSTTWIN_FAULT_SEED` (printed by the harness). Unset (always, outside the harness): no fault, one
/// dictionary lookup.
public enum FaultPoints {
    /// The named points.
    public enum Point: String, CaseIterable, Sendable {
        /// A hub applied a batch and committed its cursor, before acknowledging it.
        case hubAfterApply = "hub.after_apply"
        /// An agent sent part of a frame.
        case agentMidFrame = "agent.mid_frame"
        /// A relaying hub sent part of its frames upstream.
        case relayMidFrame = "relay.mid_frame"
    }

    /// The exit status of an injected crash.
    public static let exitStatus: Int32 = 86

    static let configured: [Point: Double] = {
        guard let spec = ProcessInfo.processInfo.environment["HOSTTWIN_FAULTS"] else { return [:] }
        var out: [Point: Double] = [:]
        for part in spec.split(separator: ",") {
            let kv = part.split(separator: "=")
            guard kv.count == 2, let p = Point(rawValue: String(kv[0])), let prob = Double(kv[1]), prob >= 0, prob <= 1 else { continue }
            out[p] = prob
        }
        return out
    }()

    static let random = Mutex(SeededRandom(seed: ProcessInfo.processInfo.environment["HOSTTWIN_FAULT_SEED"].flatMap { UInt64($0) } ?? 1))

    /// Whether `point` fires now (never when no fault is configured).
    public static func fires(_ point: Point) -> Bool {
        guard let p = configured[point], p > 0 else { return false }
        let draw = random.withLock { Double($0.next() >> 11) / Double(1 << 53) }
        return draw < p
    }

    /// Exits at once when `point` fires.
    public static func check(_ point: Point) {
        if fires(point) { crash(point) }
    }

    /// Exits at once, as a crash at `point` (after ``fires(_:)`` said so and the point's work half done).
    public static func crash(_ point: Point) -> Never {
        FileHandle.standardError.write(Data("hosttwin: injected fault \(point.rawValue): exiting\n".utf8))
        _exit(exitStatus)
    }
}
