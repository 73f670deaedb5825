import TwinCore

/// What series would take in each tier, encoded as the store encodes them: group rows of 64 series, raw
/// samples an hour a row (after compaction), 1-minute rollup points an hour a row, 1-hour points a day a
/// row; each row's directory and (deflated where smaller) data. Not counted: the database's pages, the
/// rows' index entries and the series index. For the storage part of the observation study.
public enum TierCost {
    public struct Bytes: Sendable, Codable, Equatable {
        public var raw = 0, minute = 0, hour = 0
        public var samples = 0, minutePoints = 0, hourPoints = 0
    }

    /// The cost of `series` (each a time-ordered list of samples) over `[from, to)`, whole hours.
    public static func bytes(_ series: [[(Int64, Double)]], from: Int64, to: Int64) throws -> Bytes {
        var out = Bytes()
        let hour = StoragePolicy.hour, day = StoragePolicy.day
        for start in stride(from: 0, to: series.count, by: Int(GroupBlock.size)) {
            let group = series[start..<min(series.count, start + Int(GroupBlock.size))]
            var dayPoints = [[RollupPoint]](repeating: [], count: group.count)
            var h = from
            while h < to {
                var raw: [(id: Int64, count: Int, blob: [UInt8])] = [], minutes: [(id: Int64, count: Int, blob: [UInt8])] = []
                for (i, s) in group.enumerated() {
                    let inHour = s.filter { $0.0 >= h && $0.0 < h + hour }
                    guard !inHour.isEmpty else { continue }
                    raw.append((Int64(i), inHour.count, try ChunkCodec.encodeMember(inHour)))
                    let points = Rollup.points(inHour, step: StoragePolicy.minute)
                    minutes.append((Int64(i), points.count, try Rollup.encodeMember(points)))
                    dayPoints[i] += Rollup.points(inHour, step: hour)
                    out.samples += inHour.count
                    out.minutePoints += points.count
                }
                out.raw += size(raw)
                out.minute += size(minutes)
                h += hour
                if (h - from) % day == 0 || h >= to {
                    let members = try dayPoints.enumerated().filter { !$0.element.isEmpty }.map { (Int64($0.offset), $0.element.count, try Rollup.encodeMember($0.element)) }
                    out.hour += size(members)
                    out.hourPoints += members.reduce(0) { $0 + $1.1 }
                    dayPoints = dayPoints.map { _ in [] }
                }
            }
        }
        return out
    }

    private static func size(_ members: [(id: Int64, count: Int, blob: [UInt8])]) -> Int {
        guard !members.isEmpty else { return 0 }
        let (directory, data) = GroupBlock.encode(members)
        return directory.count + data.count
    }
}
