/// The head: every series' open chunk — its samples since the last cut, Gorilla-encoded in memory
/// (about 1–2 bytes a sample). A cut freezes them all for the ``Sealer`` and starts empty ones, together
/// with a new log segment, so one segment always holds exactly the samples of one head window.
struct Head {
    private(set) var slotOf: [Int64: Int] = [:]
    private(set) var ids: [Int64] = []
    private var chunks: [XORChunkEncoder] = []
    /// Bulk path: per slot, the newest sample time accepted for the series (`unknown` until looked up).
    var accepted: [Int64] = []
    static let unknown = Int64.min
    private(set) var samples = 0
    /// Time of the oldest sample in the head (the window start for cut decisions).
    private(set) var oldest: Int64?

    /// The slot of series `id`, created on first use. Slots stay valid until the next ``cut()``.
    @inline(__always)
    mutating func slot(_ id: Int64) -> Int {
        if let s = slotOf[id] { return s }
        slotOf[id] = ids.count
        ids.append(id)
        chunks.append(XORChunkEncoder())
        accepted.append(Self.unknown)
        return ids.count - 1
    }

    /// Appends to the open chunk in `slot`; refuses a sample not after that chunk's last one.
    @inline(__always)
    mutating func append(slot: Int, _ t: Int64, _ v: Double) throws {
        try chunks[slot].append(t, v)
        samples += 1
        if oldest == nil || t < oldest! { oldest = t }
    }

    /// The open chunk's last sample time in `slot`, if it has one.
    func lastTime(slot: Int) -> Int64? { chunks[slot].count > 0 ? chunks[slot].lastTime : nil }

    /// Forgets the bulk path's accepted times (after a failed write), so they are looked up again.
    mutating func resetAccepted() { for i in accepted.indices { accepted[i] = Self.unknown } }

    /// Freezes every non-empty open chunk and empties the head.
    mutating func cut() -> [FrozenChunk] {
        var out: [FrozenChunk] = []
        out.reserveCapacity(ids.count)
        for (i, id) in ids.enumerated() where chunks[i].count > 0 {
            out.append(FrozenChunk(seriesID: id, chunk: chunks[i]))
        }
        self = Head()
        return out
    }
}

/// A head chunk handed to the sealer.
struct FrozenChunk: Sendable {
    var seriesID: Int64
    var chunk: XORChunkEncoder

    func samples() throws -> [(Int64, Double)] {
        var out: [(Int64, Double)] = []
        out.reserveCapacity(chunk.count)
        try XORChunkDecoder.decode(chunk.bytes, count: chunk.count, into: &out)
        return out
    }
}
