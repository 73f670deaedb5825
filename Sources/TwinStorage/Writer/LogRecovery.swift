import Foundation
import TwinCore

/// What an earlier writer left in `wal/` and did not seal: replayed into a head at start-up.
struct LogRecovery {
    /// The unsealed samples, as a head to hand to the sealer.
    var head = Head()
    /// The newest sample time in the replayed segments.
    var newest: Int64?
    /// The newest replayed segment; nil when there was nothing to replay.
    var throughSegment: UInt64?
    /// The times of the replayed ticks, in order: they continue the sequence numbers of the sealed ones.
    var ticks: [Int64] = []

    /// Replays the segments after `sealed`, deleting those sealed before a crash. A torn tail of the
    /// newest segment (a power loss mid-write) is cut off and reported; damage anywhere else stops the
    /// start with an error naming the file, since the records after it cannot be decoded: `hosttwin
    /// repair` salvages what precedes it.
    static func replay(dataDir: String, sealed: UInt64, report: (String) -> Void) throws -> LogRecovery {
        var r = LogRecovery()
        let all = LogSegment.list(dataDir)
        for s in all where s.seq <= sealed { unlink(s.path) }
        let segments = all.filter { $0.seq > sealed }
        for (i, seg) in segments.enumerated() {
            let scan = try LogSegment.scan(seg.path) { id, t, v in
                try? r.head.append(slot: r.head.slot(id), t, v)
                if r.newest == nil || t > r.newest! { r.newest = t }
            }
            if let damage = scan.damage {
                guard i == segments.count - 1 else {
                    throw TwinError.corrupt(what: seg.path, detail: "\(damage); the records after it cannot be read. Run `hosttwin repair --data-dir \(dataDir)` to keep what precedes it")
                }
                report("log segment \(seg.path): \(damage); cut at byte \(scan.validBytes), \(scan.fileBytes - scan.validBytes) bytes dropped")
                _ = truncate(seg.path, off_t(scan.validBytes))
            }
            r.ticks += scan.ticks
        }
        r.throughSegment = segments.last?.seq
        return r
    }
}
