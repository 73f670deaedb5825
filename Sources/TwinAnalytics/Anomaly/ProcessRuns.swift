import TwinCore

/// Processes' runs, gathered from their versions, and the restart loops among them
/// (``AnomalyScan/restartLoops(store:from:to:)`` says what a loop is).
///
/// A run is one process (its versions by key) that started in the window: its start, command, owner, and
/// its end once none of its versions is open. Versions can be fed in pieces — those that started, then
/// those that ended, since the last look — and one fed twice changes nothing, so a rule can follow the
/// window as it moves instead of reading all of it at every evaluation.
///
/// A run holds its command's hash and at most ``shownCommand`` characters of it: a compiler's command
/// line is tens of kilobytes, and a build starts thousands in the ten minutes a rule looks back.
public struct ProcessRuns: Sendable {
    /// The attributes a run is made of: what readers need decode of a process version, no more.
    public static let attributes: Set<String> = ["command", "start_time", "unit", "ppid", "host", "after_exit"]
    /// The longest command a run keeps (in characters) to name its loop; longer ones end with "…".
    public static let shownCommand = 200

    struct Run: Sendable {
        var start: Int64
        /// The whole command's hash (loops are told apart by it) and its shown part.
        var commandHash: Int
        var command: String
        var owner: String
        var host: String?
        var afterExit: String?
        /// The starts of its versions still open when last seen.
        var open: Set<Int64>
        /// The latest end among its closed versions.
        var lastEnd: Int64?
        /// When the process exited: once every version seen is closed.
        var end: Int64? { open.isEmpty ? lastEnd : nil }

        mutating func saw(_ v: EntityVersion) {
            if let to = v.validTo {
                open.remove(v.validFrom)
                lastEnd = max(lastEnd ?? to, to)
            } else {
                open.insert(v.validFrom)
            }
        }
    }

    private var runs: [String: Run] = [:]

    public init() {}

    /// Processes' versions that started in the window, oldest first.
    public mutating func started(_ versions: [EntityVersion]) {
        for v in versions where v.kind == .processes {
            let id = Self.id(v)
            if runs[id] != nil {
                runs[id]!.saw(v)
                continue
            }
            // A command sealed at rest and read without its key cannot be told from another.
            guard case .string(let command)? = v.attributes["command"], !command.isEmpty, command != Redactor.mask else { continue }
            // Only processes that started in the window (not a change of one started before it).
            if case .string(let started)? = v.attributes["start_time"], let s = TwinTime.parseRFC3339(started), s < v.validFrom - 5_000 { continue }
            var owner: String?
            if case .string(let unit)? = v.attributes["unit"] { owner = unit } else if let ppid = v.attributes["ppid"]?.intValue, ppid > 1 { owner = "parent pid \(ppid)" }
            // Runs no one launched again (no unit, no parent but init) can never be a loop.
            guard let owner else { continue }
            let long = (command.index(command.startIndex, offsetBy: Self.shownCommand, limitedBy: command.endIndex) ?? command.endIndex) < command.endIndex
            let shown = long ? String(command.prefix(Self.shownCommand - 1)) + "…" : command
            var run = Run(start: v.validFrom, commandHash: command.hashValue, command: shown, owner: owner, host: v.attributes["host"]?.description,
                          afterExit: v.attributes["after_exit"]?.description, open: [], lastEnd: nil)
            run.saw(v)
            runs[id] = run
        }
    }

    /// Processes' versions that ended since the last look: the runs they belong to learn their ends.
    public mutating func ended(_ versions: [EntityVersion]) {
        for v in versions where v.kind == .processes && v.validTo != nil {
            let id = Self.id(v)
            if runs[id] != nil { runs[id]!.saw(v) }
        }
    }

    /// Drops the runs that started before `t` (the window moved past them).
    public mutating func forget(before t: Int64) {
        runs = runs.filter { $0.value.start >= t }
    }

    /// The restart loops among the runs held.
    public func restartLoops() -> [AnomalyReport.Warning] {
        struct Loop: Hashable { var host: String?; var commandHash: Int; var owner: String }
        var byLoop: [Loop: [Run]] = [:]
        for r in runs.values {
            guard let end = r.end, end - r.start < 60_000 else { continue }
            byLoop[Loop(host: r.host, commandHash: r.commandHash, owner: r.owner), default: []].append(r)
        }
        var out: [AnomalyReport.Warning] = []
        for (loop, list) in byLoop where list.count >= 5 {
            let sorted = list.sorted { $0.start < $1.start }
            // The longest chain of runs each starting within 3 s after the one before it ended and lasting
            // about as long (within a factor of 2, runs under 2 s alike): a program that fails the same way
            // each time, not a launcher running jobs of every length back to back. Where exit statuses
            // are known (`after_exit`, root on Linux), most restarts must follow a failure: a polling loop
            // or a job runner whose programs exit 0 is not crashing.
            var chain = 1, chainStart = sorted[0].start, known = 0, failed = 0
            var longest = (runs: 1, start: chainStart, known: 0, failed: 0)
            for (a, b) in zip(sorted, sorted.dropFirst()) {
                let gap = b.start - (a.end ?? .max)
                let ratio = Double(max((a.end ?? a.start) - a.start, 2_000)) / Double(max((b.end ?? b.start) - b.start, 2_000))
                if gap >= -1_000, gap <= 3_000, ratio >= 0.5, ratio <= 2 {
                    chain += 1
                    if let exit = b.afterExit { known += 1; if exit != "exit 0" { failed += 1 } }
                } else {
                    chain = 1; chainStart = b.start; known = 0; failed = 0
                }
                if chain > longest.runs { longest = (chain, chainStart, known, failed) }
            }
            guard longest.runs >= 5, longest.known == 0 || 2 * longest.failed > longest.known else { continue }
            let exits = longest.known > 0 ? "; \(longest.failed) of \(longest.known) restarts after a failed exit" : ""
            out.append(.init(kind: "restarting in a loop", subject: sorted[0].command,
                             evidence: "\(longest.runs) runs in a row by \(loop.owner) since \(TwinTime.rfc3339(longest.start)), each under a minute, as long as the last one and started within 3 s of its exit" + exits,
                             host: loop.host))
        }
        return out
    }

    /// A process's identity across hosts: its host and key.
    private static func id(_ v: EntityVersion) -> String {
        (v.attributes["host"]?.description ?? "") + "\u{0}" + v.key
    }
}
