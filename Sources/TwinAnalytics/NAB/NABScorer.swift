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
    public static func probation(_ n: Int) -> Int { min(Int((0.15 * Double(n)).rounded(.down)), 750) }

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

    /// The threshold sweep over all of `corpus`.
    static func optimise(_ corpus: NABCorpus, scores: [[Double]], profile: Profile) -> Result {
        let rows = SortedRows(corpus, scores: scores, profile: profile)
        let (threshold, raw) = rows.sweep { _ in true }
        return Result(profile: profile.name, threshold: threshold, raw: raw, score: normalise(raw, windows: corpus.windowCount, profile: profile))
    }

    /// Every scored row of a corpus (probation excluded) in decreasing score order, with its weight,
    /// its window (numbered across the corpus) and its category, so that thresholds can be swept over
    /// any set of categories without sorting again.
    struct SortedRows {
        struct Row { var score: Double; var weight: Double; var window: Int32; var category: Int32 }
        var rows: [Row] = []
        /// Per window, its category.
        var windowCategory: [Int32] = []
        var categories: [Substring] = []
        let profile: Profile

        init(_ corpus: NABCorpus, scores: [[Double]], profile: Profile) {
            self.profile = profile
            for (f, file) in corpus.files.enumerated() {
                let c: Int32
                if let k = categories.firstIndex(of: file.category) { c = Int32(k) } else { c = Int32(categories.count); categories.append(file.category) }
                let w = weights(file, profile)
                let base = Int32(windowCategory.count)
                for i in probation(file.timestamps.count)..<file.timestamps.count {
                    rows.append(Row(score: scores[f][i], weight: w[i].weight, window: w[i].window.map { base + Int32($0) } ?? -1, category: c))
                }
                windowCategory += Array(repeating: c, count: file.windows.count)
            }
            rows.sort { $0.score > $1.score }
        }

        /// The threshold maximising the raw score over the categories `include` accepts (by index in
        /// `categories`), and that raw score. Ties keep the highest threshold.
        func sweep(_ include: (Int) -> Bool) -> (threshold: Double, raw: Double) {
            let included = categories.indices.map(include)
            var best = [Double?](repeating: nil, count: windowCategory.count)
            // Detect nothing: every window missed.
            var current = -profile.fn * Double(windowCategory.filter { included[Int($0)] }.count)
            var bestRaw = current, bestThreshold = 1.1
            var i = 0
            while i < rows.count {
                let v = rows[i].score
                while i < rows.count, rows[i].score == v {
                    let r = rows[i]
                    i += 1
                    guard included[Int(r.category)] else { continue }
                    if r.window >= 0 {
                        let win = Int(r.window)
                        if let b = best[win] {
                            if r.weight > b { current += r.weight - b; best[win] = r.weight }
                        } else {
                            current += r.weight + profile.fn
                            best[win] = r.weight
                        }
                    } else {
                        current += r.weight
                    }
                }
                if current > bestRaw { bestRaw = current; bestThreshold = v }
            }
            return (bestThreshold, bestRaw)
        }
    }

    /// One held-out category of a leave-one-category-out evaluation: the threshold tuned on the other
    /// categories, the candidate chosen there (0 when there was one), and the category's score with them.
    public struct Fold: Sendable {
        public var category: String
        public var threshold: Double
        public var candidate: Int
        public var score: Double
    }

    /// A leave-one-category-out (LOCO) evaluation of one profile: a fold per category that has windows,
    /// and the mean of their scores.
    public struct LOCO: Sendable {
        public var profile: String
        public var folds: [Fold]
        public var mean: Double { folds.isEmpty ? 0 : folds.reduce(0) { $0 + $1.score } / Double(folds.count) }
    }

    /// Leave-one-category-out, as ../shared/data/nab/SCOREBOARD.md computes it: for each category with
    /// windows, one threshold is tuned on all the other categories (categories without windows count
    /// there through their false positives) and the category is scored with it.
    ///
    /// With several `candidates` (each one set of per-row scores for the whole corpus, e.g. one per
    /// parameter setting of a detector), each fold also chooses the candidate whose tuned score on the
    /// other categories is highest: the choice of parameters never sees the category it is scored on.
    public static func loco(_ corpus: NABCorpus, candidates: [[[Double]]], profile: Profile) -> LOCO {
        let sorted = candidates.map { SortedRows(corpus, scores: $0, profile: profile) }
        guard let first = sorted.first else { return LOCO(profile: profile.name, folds: []) }
        var folds: [Fold] = []
        for (c, name) in first.categories.enumerated() where first.windowCategory.contains(Int32(c)) {
            var chosen = 0, chosenRaw = -Double.infinity, threshold = 1.1
            for (k, rows) in sorted.enumerated() {
                let t = rows.sweep { $0 != c }
                if t.raw > chosenRaw { chosen = k; chosenRaw = t.raw; threshold = t.threshold }
            }
            let held = NABCorpus(files: corpus.files.filter { $0.category == name })
            let heldScores = zip(corpus.files, candidates[chosen]).filter { $0.0.category == name }.map(\.1)
            let score = normalise(raw(held, scores: heldScores, threshold: threshold, profile: profile), windows: held.windowCount, profile: profile)
            folds.append(Fold(category: String(name), threshold: threshold, candidate: chosen, score: score))
        }
        return LOCO(profile: profile.name, folds: folds)
    }
}
