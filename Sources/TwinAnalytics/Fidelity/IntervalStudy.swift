/// Accuracy against interval for bursty signals (docs/OBSERVATION.md): a counter captured at a fine
/// reference step (0.1 s) is sampled again at coarser intervals — exact for counters, which only add up
/// — and what each interval keeps of the reference is measured: the peak rate, the bursts, and the rate
/// at each reference step (step-held). Adaptive sampling (a base interval, a fast one after a change) is
/// simulated on the same capture with its sample count, so its cost sits beside what it recovers.
public enum IntervalStudy {
    /// What one way of sampling keeps of the reference.
    public struct Accuracy: Sendable, Codable, Equatable {
        /// "1s", or "adaptive 5s/1s".
        public var sampling: String
        /// Samples taken per minute.
        public var samplesPerMinute: Double
        /// The highest rate seen, as a share of the reference's.
        public var peakKept: Double
        /// Reference bursts (runs of steps above half the reference peak) with a sample above that threshold.
        public var burstsSeen: Int
        public var bursts: Int
        /// Mean absolute difference between the step-held rate and the reference rate, over the mean
        /// reference rate.
        public var relativeError: Double
        enum CodingKeys: String, CodingKey {
            case sampling, samplesPerMinute = "samples_per_minute", peakKept = "peak_kept", burstsSeen = "bursts_seen", bursts, relativeError = "relative_error"
        }
    }

    /// The reference steps sampled at a fixed interval of `every` steps (not necessarily whole: 0.25 s on
    /// a 0.1 s reference takes the nearest step each time, 2 or 3 apart).
    static func fixed(_ n: Int, every: Double) -> [Int] {
        var out: [Int] = []
        var k = 0.0
        while true {
            let i = Int((k * every).rounded())
            guard i < n else { return out }
            if out.last != i { out.append(i) }
            k += 1
        }
    }

    /// Adaptive sampling on the reference's steps: every `base` steps, every `fast` steps for `hold` steps
    /// after a sample whose rate differs from the one before by more than `change` of the reference's mean
    /// rate (what `run` would do with the counter's last two samples).
    static func adaptive(_ counter: [Double], base: Int, fast: Int, hold: Int, change: Double, meanRate: Double) -> [Int] {
        var taken = [0]
        var fastUntil = -1
        var lastRate: Double?
        var i = 0
        while true {
            i += i < fastUntil ? fast : base
            guard i < counter.count else { break }
            let prev = taken.last!
            let rate = (counter[i] - counter[prev]) / Double(i - prev)
            if let lastRate, abs(rate - lastRate) > change * meanRate { fastUntil = i + hold }
            lastRate = rate
            taken.append(i)
        }
        return taken
    }

    /// What sampling `counter` (one value per reference step of `stepMillis`) at the steps `taken` keeps.
    static func accuracy(_ name: String, _ counter: [Double], stepMillis: Int64, taken: [Int]) -> Accuracy {
        let n = counter.count
        // Reference rate per step (per second), and the step-held rate of the sampled counter.
        var reference = [Double](repeating: 0, count: n)
        for i in 1..<n { reference[i] = (counter[i] - counter[i - 1]) * 1000 / Double(stepMillis) }
        var held = [Double](repeating: .nan, count: n)
        var sampledPeak = 0.0
        for (a, b) in zip(taken, taken.dropFirst()) {
            let r = (counter[b] - counter[a]) * 1000 / (Double(b - a) * Double(stepMillis))
            sampledPeak = max(sampledPeak, r)
            for i in (a + 1)...b { held[i] = r }
        }
        let peak = reference.max() ?? 0
        let threshold = peak / 2
        // Bursts of the reference, and whether a sample's rate over them passes the threshold.
        var bursts = 0, seen = 0
        var i = 1
        while i < n {
            guard reference[i] > threshold else { i += 1; continue }
            var j = i
            while j + 1 < n, reference[j + 1] > threshold { j += 1 }
            bursts += 1
            if held[i...j].contains(where: { $0 > threshold }) { seen += 1 }
            i = j + 1
        }
        var error = 0.0, count = 0
        for i in 1..<n where !held[i].isNaN { error += abs(held[i] - reference[i]); count += 1 }
        let meanRate = reference.dropFirst().reduce(0, +) / Double(max(n - 1, 1))
        let minutes = Double(n) * Double(stepMillis) / 60_000
        return Accuracy(sampling: name, samplesPerMinute: Double(taken.count) / minutes, peakKept: peak > 0 ? sampledPeak / peak : 1,
                        burstsSeen: seen, bursts: bursts, relativeError: meanRate > 0 && count > 0 ? error / Double(count) / meanRate : 0)
    }

    /// The study of one signal: `counter` captured every `stepMillis`, sampled at each of `intervals`
    /// (ms, at least the step) and adaptively at each (base, fast) pair of `adaptive` (fast for 10 s
    /// after a change of more than the mean rate).
    public static func study(_ counter: [Double], stepMillis: Int64, intervals: [Int64], adaptive pairs: [(base: Int64, fast: Int64)]) -> [Accuracy] {
        guard counter.count >= 2, stepMillis > 0 else { return [] }
        var out: [Accuracy] = []
        for iv in intervals where iv >= stepMillis {
            out.append(accuracy(Self.label(iv), counter, stepMillis: stepMillis, taken: fixed(counter.count, every: Double(iv) / Double(stepMillis))))
        }
        let meanRate = (counter.last! - counter.first!) / Double(counter.count - 1)
        for (base, fast) in pairs where fast >= stepMillis && base >= fast {
            // Whole steps: a fast interval of 0.25 s on a 0.1 s reference is taken as 0.3 s, and named so.
            let baseSteps = Int((Double(base) / Double(stepMillis)).rounded()), fastSteps = Int((Double(fast) / Double(stepMillis)).rounded())
            let taken = adaptive(counter, base: baseSteps, fast: fastSteps, hold: Int(10_000 / stepMillis), change: 1, meanRate: meanRate)
            out.append(accuracy("adaptive \(label(Int64(baseSteps) * stepMillis))/\(label(Int64(fastSteps) * stepMillis))", counter, stepMillis: stepMillis, taken: taken))
        }
        return out
    }

    static func label(_ ms: Int64) -> String { ms % 1000 == 0 ? "\(ms / 1000)s" : "\(Double(ms) / 1000)s" }
}
