import Foundation

/// NAB's scoring rules (nab/sweeper.py, scorer.py at commit ea702d7, as ../shared/data/nab/SCORING.md
/// states them): row weights from a scaled sigmoid around each labelled window, the earliest detection
/// of a window counts, every detection outside windows costs, the threshold is chosen to maximise the
/// corpus score, and the result is normalised between the null detector (0) and a perfect one (100).
public enum NABScorer {
    /// A cost profile of NAB (config/profiles.json).
    public struct Profile: Sendable, Hashable {
        public var name: String
        public var tp: Double
        public var fn: Double
        public var fp: Double

        public static let standard = Profile(name: "standard", tp: 1, fn: 1, fp: 0.11)
        public static let rewardLowFP = Profile(name: "reward_low_FP_rate", tp: 1, fn: 1, fp: 0.22)
        public static let rewardLowFN = Profile(name: "reward_low_FN_rate", tp: 1, fn: 2, fp: 0.11)
        public static let all = [standard, rewardLowFP, rewardLowFN]
    }

    /// The score of one profile: the threshold that maximises it, the raw corpus score and the
    /// normalised score (null 0, perfect 100).
    public struct Result: Sendable {
        public var profile: String
        public var threshold: Double
        public var raw: Double
        public var score: Double
    }

    /// NAB's scaled sigmoid.
    static func sigmoid(_ y: Double) -> Double { y > 3 ? -1 : 2 / (1 + exp(5 * y)) - 1 }

    /// Rows before this are ignored completely.
    static func probation(_ n: Int) -> Int { min(Int((0.15 * Double(n)).rounded(.down)), 750) }

    /// Per row: its weight when detected, and the window it lies in (nil outside windows).
    static func weights(_ file: NABCorpus.File, _ p: Profile) -> [(weight: Double, window: Int?)] {
        let n = file.timestamps.count
        var out = [(weight: Double, window: Int?)](repeating: (-p.fp, nil), count: n)
        var last: ClosedRange<Int>?
        var w = 0
        var i = 0
        let windows = file.windows.sorted { $0.lowerBound < $1.lowerBound }
        while i < n {
            if w < windows.count, i == windows[w].lowerBound {
                let win = windows[w]
                let width = Double(win.count)
                for j in win {
                    out[j] = (p.tp * sigmoid(-Double(win.upperBound - j + 1) / width) / sigmoid(-1), w)
                }
                last = win
                w += 1
                i = win.upperBound + 1
                continue
            }
            if let l = last {
                out[i] = (p.fp * sigmoid(Double(i - l.upperBound) / Double(l.count - 1)), nil)
            }
            i += 1
        }
        return out
    }

    /// Scores `scores` (one array per file of `corpus`, one value in [0, 1] per row) for each profile,
    /// choosing per profile the threshold that maximises the corpus score among the distinct scores
    /// (and 1.1: detect nothing).
    public static func score(_ corpus: NABCorpus, scores: [[Double]], profiles: [Profile] = Profile.all) -> [Result] {
        profiles.map { optimise(corpus, scores: scores, profile: $0) }
    }

    /// The raw corpus score at one threshold.
    public static func raw(_ corpus: NABCorpus, scores: [[Double]], threshold: Double, profile: Profile) -> Double {
        var total = 0.0
        for (f, file) in corpus.files.enumerated() {
            let w = weights(file, profile)
            var best = [Double?](repeating: nil, count: file.windows.count)
            for i in probation(file.timestamps.count)..<file.timestamps.count where scores[f][i] >= threshold {
                if let win = w[i].window { best[win] = max(best[win] ?? -.infinity, w[i].weight) } else { total += w[i].weight }
            }
            total += best.reduce(0) { $0 + ($1 ?? -profile.fn) }
        }
        return total
    }

    /// Normalises a raw corpus score: 100 × (raw − null) / (perfect − null).
    public static func normalise(_ raw: Double, windows: Int, profile: Profile) -> Double {
        let null = -profile.fn * Double(windows), perfect = profile.tp * Double(windows)
        return 100 * (raw - null) / (perfect - null)
    }

    /// The threshold sweep: rows in decreasing score order, the corpus score updated as each group of
    /// equal scores becomes detected.
    static func optimise(_ corpus: NABCorpus, scores: [[Double]], profile: Profile) -> Result {
        struct Row { var score: Double; var weight: Double; var window: Int? }
        var rows: [Row] = []
        var windowBase = 0
        for (f, file) in corpus.files.enumerated() {
            let w = weights(file, profile)
            for i in probation(file.timestamps.count)..<file.timestamps.count {
                rows.append(Row(score: scores[f][i], weight: w[i].weight, window: w[i].window.map { $0 + windowBase }))
            }
            windowBase += file.windows.count
        }
        rows.sort { $0.score > $1.score }
        var best = [Double?](repeating: nil, count: windowBase)
        // Detect nothing: every window missed.
        var current = -profile.fn * Double(windowBase)
        var bestRaw = current, bestThreshold = 1.1
        var i = 0
        while i < rows.count {
            let v = rows[i].score
            while i < rows.count, rows[i].score == v {
                let r = rows[i]
                if let win = r.window {
                    if let b = best[win] {
                        if r.weight > b { current += r.weight - b; best[win] = r.weight }
                    } else {
                        current += r.weight + profile.fn
                        best[win] = r.weight
                    }
                } else {
                    current += r.weight
                }
                i += 1
            }
            if current > bestRaw { bestRaw = current; bestThreshold = v }
        }
        return Result(profile: profile.name, threshold: bestThreshold, raw: bestRaw, score: normalise(bestRaw, windows: windowBase, profile: profile))
    }
}
