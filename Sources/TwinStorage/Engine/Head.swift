/// The head: every series' open chunk — its samples since the last cut, Gorilla-encoded in memory
/// (about 1–2 bytes a sample). A cut freezes them all for the ``Sealer`` and starts empty ones, together
/// with a new log segment, so one segment always holds exactly the samples of one head window.
struct Head {
    /// Series id → slot + 1 (0: none yet), for ids below ``denseLimit``: series ids are rowids, dense
    /// from 1, and a hub's hundreds of thousands of series made a dictionary lookup per sample its
    /// costliest step (cache misses in a large hash table).
    private var denseSlots: [Int32] = []
    private var sparseSlots: [Int64: Int] = [:]
    static let denseLimit: Int64 = 1 << 26
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
        if id >= 0, id < Self.denseLimit {
            let i = Int(id)
            if i < denseSlots.count, denseSlots[i] != 0 { return Int(denseSlots[i]) - 1 }
            if i >= denseSlots.count { denseSlots += repeatElement(0, count: max(i + 1, denseSlots.count * 2) - denseSlots.count) }
            denseSlots[i] = Int32(ids.count + 1)
        } else {
            if let s = sparseSlots[id] { return s }
            sparseSlots[id] = ids.count
        }
        ids.append(id)
        chunks.append(XORChunkEncoder())
        accepted.append(Self.unknown)
        return ids.count - 1
    }

    /// The bulk path's admission, in one access to the head (a sample at a time through the writer's
    /// stored property cost an exclusivity check each): each sample's slot, kept when it is after its
    /// series' newest known time (`newest(id)`: looked up once per series and window), else counted.
    mutating func admit(_ batch: [(Int64, Int64, Double)], newest: (Int64) throws -> Int64?) rethrows
        -> (accepted: [(Int64, Int64, Double)], slots: [Int], rejected: Int, firstRejection: (id: Int64, t: Int64, last: Int64)?) {
        var accepted: [(Int64, Int64, Double)] = []
        var slots: [Int] = []
        accepted.reserveCapacity(batch.count)
        slots.reserveCapacity(batch.count)
        var rejected = 0
        var first: (id: Int64, t: Int64, last: Int64)?
        for s in batch {
            let slot = self.slot(s.0)
            var last = self.accepted[slot]
            if last == Self.unknown { last = try lastTime(slot: slot) ?? newest(s.0) ?? Self.unknown }
            guard s.1 > last || last == Self.unknown else {
                self.accepted[slot] = last
                rejected += 1
                if first == nil { first = (s.0, s.1, last) }
                continue
            }
            self.accepted[slot] = s.1
            accepted.append(s)
            slots.append(slot)
        }
        return (accepted, slots, rejected, first)
    }

    /// Appends admitted samples to their slots' open chunks; returns the newest time appended.
    mutating func append(_ samples: [(Int64, Int64, Double)], slots: [Int]) throws -> Int64 {
        var newest = Int64.min
        for (i, (_, t, v)) in samples.enumerated() {
            try append(slot: slots[i], t, v)
            if t > newest { newest = t }
        }
        return newest
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
