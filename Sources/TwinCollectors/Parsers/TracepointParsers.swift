/// One field of a kernel tracepoint's record: where it is and how wide.
public struct TracepointField: Sendable, Equatable {
    public var offset: Int
    public var size: Int

    public init(offset: Int, size: Int) { (self.offset, self.size) = (offset, size) }
}

/// Parses a tracepoint's `format` file from tracefs (`field:__u16 sport;\toffset:24;\tsize:2;\tsigned:0;`)
/// into its fields by name (arrays without their brackets: `saddr_v6`). Lines that are not fields, or
/// whose offset or size is missing or negative, are left out.
public func parseTracepointFormat(_ text: String) -> [String: TracepointField] {
    var fields: [String: TracepointField] = [:]
    for line in text.split(separator: "\n") {
        let parts = line.split(separator: ";").map { $0.drop { $0 == " " || $0 == "\t" } }
        guard let declaration = parts.first, declaration.hasPrefix("field:") else { continue }
        guard var name = declaration.split(separator: " ").last.map(String.init) else { continue }
        if let bracket = name.firstIndex(of: "[") { name = String(name[..<bracket]) }
        name = String(name.drop { $0 == "*" })
        var offset: Int?, size: Int?
        for part in parts.dropFirst() {
            if part.hasPrefix("offset:") { offset = Int(part.dropFirst(7)) }
            if part.hasPrefix("size:") { size = Int(part.dropFirst(5)) }
        }
        guard !name.isEmpty, let offset, let size, offset >= 0, size > 0 else { continue }
        fields[name] = TracepointField(offset: offset, size: size)
    }
    return fields
}

/// A TCP socket changing state, as the kernel's `sock:inet_sock_set_state` tracepoint reports it.
public struct TCPStateChange: Sendable, Equatable {
    /// The perf clock (ns since boot); orders changes reported on different CPUs.
    public var time: UInt64
    public var oldState: Int
    public var newState: Int
    /// AF_INET (2) or AF_INET6 (10).
    public var family: Int
    /// IPPROTO_TCP (6); the tracepoint also reports SCTP and MPTCP sockets.
    public var protocolNumber: Int
    /// The socket's own end and its peer, spelled as the socket dumps spell them.
    public var local: (address: String, port: Int)
    public var remote: (address: String, port: Int)

    public static func == (a: TCPStateChange, b: TCPStateChange) -> Bool {
        (a.time, a.oldState, a.newState, a.family, a.protocolNumber) == (b.time, b.oldState, b.newState, b.family, b.protocolNumber)
            && a.local == b.local && a.remote == b.remote
    }
}

/// Where `inet_sock_set_state`'s fields are in its records, from the tracepoint's format (the layout is
/// the kernel's, so it is read, not assumed).
public struct TCPStateLayout: Sendable, Equatable {
    let oldState, newState, sourcePort, destinationPort, family, protocolNumber: TracepointField
    let source, destination, source6, destination6: TracepointField

    /// Nil unless every field is present with the width the parser reads.
    public init?(fields f: [String: TracepointField]) {
        guard let oldState = f["oldstate"], oldState.size == 4, let newState = f["newstate"], newState.size == 4,
              let sport = f["sport"], sport.size == 2, let dport = f["dport"], dport.size == 2,
              let family = f["family"], family.size == 2, let proto = f["protocol"], proto.size == 2,
              let saddr = f["saddr"], saddr.size == 4, let daddr = f["daddr"], daddr.size == 4,
              let saddr6 = f["saddr_v6"], saddr6.size == 16, let daddr6 = f["daddr_v6"], daddr6.size == 16 else { return nil }
        (self.oldState, self.newState, sourcePort, destinationPort) = (oldState, newState, sport, dport)
        (self.family, protocolNumber, source, destination, source6, destination6) = (family, proto, saddr, daddr, saddr6, daddr6)
    }

    /// The bytes a record needs.
    var minimumSize: Int {
        [oldState, newState, sourcePort, destinationPort, family, protocolNumber, source, destination, source6, destination6]
            .map { $0.offset + $0.size }.max() ?? 0
    }

    /// The change one raw record describes; nil when it is too short.
    public func change(raw: UnsafeRawBufferPointer, time: UInt64) -> TCPStateChange? {
        guard raw.count >= minimumSize else { return nil }
        func int(_ f: TracepointField) -> Int {
            f.size == 2 ? Int(raw.loadUnaligned(fromByteOffset: f.offset, as: UInt16.self))
                : Int(raw.loadUnaligned(fromByteOffset: f.offset, as: Int32.self))
        }
        func address(_ v4: TracepointField, _ v6: TracepointField, family: Int) -> String {
            if family == 10 { return formatIPv6(Array(raw[v6.offset..<(v6.offset + 16)])) }
            return raw[v4.offset..<(v4.offset + 4)].map(String.init).joined(separator: ".")
        }
        let family = int(family)
        return TCPStateChange(time: time, oldState: int(oldState), newState: int(newState), family: family,
                              protocolNumber: int(protocolNumber),
                              local: (address(source, source6, family: family), int(sourcePort)),
                              remote: (address(destination, destination6, family: family), int(destinationPort)))
    }
}

/// Splits the unread bytes of a perf ring buffer (made contiguous) into samples and losses. Samples are
/// `PERF_SAMPLE_TIME | PERF_SAMPLE_RAW` records: header (type 9, size), time, raw size, raw bytes; a
/// `PERF_RECORD_LOST` (type 2) record counts the samples the kernel dropped when the ring was full. Other
/// record types are skipped; a record whose size runs past the bytes, or is shorter than its header, ends
/// the parse (what follows cannot be framed).
public func parsePerfSamples(_ bytes: UnsafeRawBufferPointer) -> (samples: [(time: UInt64, raw: Range<Int>)], lost: UInt64) {
    var samples: [(time: UInt64, raw: Range<Int>)] = []
    var lost: UInt64 = 0
    var offset = 0
    while offset + 8 <= bytes.count {
        let type = bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
        let size = Int(bytes.loadUnaligned(fromByteOffset: offset + 6, as: UInt16.self))
        guard size >= 8, offset + size <= bytes.count else { break }
        if type == 9, size >= 20 {
            let time = bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)
            let rawSize = Int(bytes.loadUnaligned(fromByteOffset: offset + 16, as: UInt32.self))
            if 20 + rawSize <= size { samples.append((time, (offset + 20)..<(offset + 20 + rawSize))) }
        } else if type == 2, size >= 24 {
            lost &+= bytes.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self)
        }
        offset += size
    }
    return (samples, lost)
}
