import TwinCore

/// Why an entity differed between the twin and the ground truth, decided by machine from a second look
/// at both: the twin as of a moment after its next observation, and the tool run again after that.
public enum MismatchCause: String, Sendable, Codable, CaseIterable {
    /// The twin's version began while the tool was running (after the tool had read that part): the two
    /// captures saw different moments, and neither is wrong.
    case duringCapture = "changed while the tool ran"
    /// The tool saw it, the twin not yet, and the twin's next observation has it: the twin's update latency.
    case appeared = "appeared since the twin's last observation"
    /// The twin still had it, the tool no longer, and the twin's next observation dropped it: latency again.
    case ended = "ended since the twin's last observation"
    /// Both had it with different attributes, and the twin's next observation has the tool's: latency again.
    case changed = "changed since the twin's last observation"
    /// The tool saw it; it was gone before the twin's next observation and from the tool's second run: it
    /// lived less than the twin's interval and fell between two observations.
    case shortLived = "lived between two observations of the twin"
    /// None of the above: the twin is wrong (or the tool is), and this counts as a failure.
    case unexplained = "unexplained"
}

/// One comparison of one kind at one moment: the tool's capture at `time`, the twin's state as of the same
/// moment, and the second look (the twin after its next observation, the tool run again after that).
public struct FidelityCapture: Sendable {
    public var kind: EntityKind
    public var truth: [ComparableEntity]
    public var twin: [ComparableEntity]
    public var twinLater: [ComparableEntity]
    public var truthLater: [ComparableEntity]
    /// Keys that are the capture's own doing (the tools' processes) and are not compared.
    public var excluded: Set<String>
    /// When the tool ran (ms since the epoch), from its start to its end.
    public var window: ClosedRange<Int64>?
    /// The twin's state as of the start and the end of the tool's run, when known: an entity the twin saw
    /// change inside the run, and that the tool saw as the twin had it at one end, agrees within the run.
    public var twinAtRunEnds: (start: [ComparableEntity], end: [ComparableEntity])?

    public init(kind: EntityKind, truth: [ComparableEntity], twin: [ComparableEntity], twinLater: [ComparableEntity],
                truthLater: [ComparableEntity], excluded: Set<String> = [], window: ClosedRange<Int64>? = nil,
                twinAtRunEnds: (start: [ComparableEntity], end: [ComparableEntity])? = nil) {
        self.window = window
        self.twinAtRunEnds = twinAtRunEnds
        self.kind = kind
        self.truth = truth
        self.twin = twin
        self.twinLater = twinLater
        self.truthLater = truthLater
        self.excluded = excluded
    }
}

/// The agreement of one kind over any number of captures.
public struct KindFidelity: Sendable, Codable {
    public var kind: EntityKind
    /// Entities in the twin, the tool or both (the union), over all captures.
    public var compared = 0
    /// Of those, present in both with equal attributes.
    public var agreed = 0
    /// Of the others, those the twin saw change while the tool ran and that the tool saw as the twin had
    /// them at the run's start or end (a tool's listing is not one instant: `ss -p` reads for tens of ms).
    public var agreedWithinRun = 0
    /// Mismatches by cause.
    public var causes: [MismatchCause: Int] = [:]
    /// A few unexplained mismatches, for the report ("key: what differed").
    public var unexplainedExamples: [String] = []

    public init(kind: EntityKind) { self.kind = kind }

    /// Share of entities present in both with equal attributes.
    public var agreement: Double { compared == 0 ? 1 : Double(agreed) / Double(compared) }
    /// Share agreed at the instant or within the tool's run.
    public var agreementWithinRun: Double { compared == 0 ? 1 : Double(agreed + agreedWithinRun) / Double(compared) }
    /// Share of entities with an unexplained mismatch.
    public var unexplainedShare: Double { compared == 0 ? 0 : Double(causes[.unexplained] ?? 0) / Double(compared) }

    enum CodingKeys: String, CodingKey { case kind, compared, agreed, agreedWithinRun = "agreed_within_run", causes, unexplainedExamples = "unexplained_examples" }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(compared, forKey: .compared)
        try c.encode(agreed, forKey: .agreed)
        try c.encode(agreedWithinRun, forKey: .agreedWithinRun)
        try c.encode(Dictionary(uniqueKeysWithValues: causes.map { ($0.key.rawValue, $0.value) }), forKey: .causes)
        try c.encode(unexplainedExamples, forKey: .unexplainedExamples)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(EntityKind.self, forKey: .kind)
        compared = try c.decode(Int.self, forKey: .compared)
        agreed = try c.decode(Int.self, forKey: .agreed)
        agreedWithinRun = try c.decodeIfPresent(Int.self, forKey: .agreedWithinRun) ?? 0
        let raw = try c.decode([String: Int].self, forKey: .causes)
        causes = Dictionary(uniqueKeysWithValues: raw.compactMap { k, v in MismatchCause(rawValue: k).map { ($0, v) } })
        unexplainedExamples = try c.decode([String].self, forKey: .unexplainedExamples)
    }

    /// Adds one capture: every key of the twin or the tool is either agreed or a mismatch with a cause.
    public mutating func add(_ capture: FidelityCapture) {
        func byKey(_ list: [ComparableEntity]) -> [String: [String: String]] {
            var out: [String: [String: String]] = [:]
            for e in list where !capture.excluded.contains(e.key) { out[e.key] = e.attributes }
            return out
        }
        let truth = byKey(capture.truth), twin = byKey(capture.twin)
        var since: [String: Int64] = [:]
        for e in capture.twin { if let t = e.since { since[e.key] = t } }
        let twinLater = byKey(capture.twinLater), truthLater = byKey(capture.truthLater)
        let runStart = capture.twinAtRunEnds.map { byKey($0.start) }, runEnd = capture.twinAtRunEnds.map { byKey($0.end) }
        func sameView(_ a: [String: String]?, _ b: [String: String]?) -> Bool {
            switch (a, b) {
            case (nil, nil): true
            case let (a?, b?): Self.agree(a, b)
            default: false
            }
        }
        // The twin's view changed inside the run when it differs between the run's start, the capture's moment
        // and the run's end (an entity that came and went inside the run is absent at both ends). A
        // re-versioning that added an attribute the tool does not report (a connection's owner) leaves the
        // tool's view as it was, and is no change.
        func viewChangedWithinRun(_ key: String) -> Bool {
            guard let runStart, let runEnd else { return false }
            return !sameView(runStart[key], twin[key]) || !sameView(twin[key], runEnd[key])
        }
        func changedDuringCapture(_ key: String) -> Bool {
            guard let t = since[key], capture.window?.contains(t) == true else { return false }
            return capture.twinAtRunEnds == nil || viewChangedWithinRun(key)
        }
        // The tool's listing stands for some moment of its run: it agrees within the run when the twin's view
        // changed inside the run and the tool's matches the twin's at one end of it.
        func agreesWithinRun(_ key: String) -> Bool {
            guard let runStart, let runEnd, viewChangedWithinRun(key) else { return false }
            return sameView(truth[key], runStart[key]) || sameView(truth[key], runEnd[key])
        }
        for key in Set(truth.keys).union(twin.keys) {
            compared += 1
            if let t = truth[key], let w = twin[key], Self.agree(t, w) { agreed += 1; continue }
            if agreesWithinRun(key) {
                agreedWithinRun += 1
                causes[.duringCapture, default: 0] += 1
                continue
            }
            let cause: MismatchCause
            switch (truth[key], twin[key]) {
            case let (t?, w?):
                cause = changedDuringCapture(key) ? .duringCapture : twinLater[key].map { Self.agree(t, $0) } == true ? .changed : .unexplained
                if cause == .unexplained { note("\(key): tool \(Self.describe(t)), twin \(Self.describe(w))") }
            case let (t?, nil):
                if let later = twinLater[key], Self.agree(t, later) { cause = .appeared }
                else if truthLater[key] == nil, twinLater[key] == nil { cause = .shortLived }
                else { cause = .unexplained; note("\(key): seen by the tool \(Self.describe(t)), not in the twin") }
            case let (nil, w?):
                if changedDuringCapture(key) { cause = .duringCapture }
                else if twinLater[key] == nil, truthLater[key] == nil { cause = .ended }
                else {
                    cause = .unexplained
                    var age = ""
                    if let s = since[key], let run = capture.window { age = " since \(run.lowerBound - s) ms before the tool ran" }
                    note("\(key): in the twin \(Self.describe(w))\(age), not seen by the tool")
                }
            case (nil, nil):
                continue
            }
            causes[cause, default: 0] += 1
        }
    }

    private mutating func note(_ s: String) { if unexplainedExamples.count < 5 { unexplainedExamples.append(s) } }

    /// Equal on every attribute both sides report (an owner pid one side cannot see is not a difference).
    static func agree(_ a: [String: String], _ b: [String: String]) -> Bool {
        for (k, v) in a { if let w = b[k], w != v { return false } }
        return true
    }

    static func describe(_ a: [String: String]) -> String {
        a.isEmpty ? "" : "(" + a.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") + ")"
    }
}
