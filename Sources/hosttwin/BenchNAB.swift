import ArgumentParser
import Foundation
import TwinAnalytics
import TwinCore
import TwinQuery
import TwinStorage

/// `hosttwin bench nab`: the detector over NAB's realAWSCloudwatch files as streams, scored by NAB's
/// rules at the detector's fixed threshold (and, for reference, at the best threshold).
struct BenchNAB: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nab",
        abstract: "NAB scores of the streaming detector on the realAWSCloudwatch files (fixed threshold), and its cost per sample.",
        discussion: "--nab is the folder holding data/ and labels/ (default ../shared/data/nab). --json prints {\"standard\": .., \"reward_low_FP_rate\": .., \"reward_low_FN_rate\": ..} plus details."
    )
    @Option(help: ArgumentHelp("NAB folder (data/, labels/).", valueName: "DIR")) var nab = "../shared/data/nab"
    @Option(help: ArgumentHelp("Category under data/.", valueName: "NAME")) var category = "realAWSCloudwatch"
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let corpus: NABCorpus
        do { corpus = try NABCorpus.load(root: nab, category: category) } catch { throw CLIError("\(error) (pass --nab DIR)") }
        var scores: [[Double]] = []
        var samples = 0
        let t0 = DispatchTime.now().uptimeNanoseconds
        for f in corpus.files {
            var d = NoveltyDetector()
            var s = [Double]()
            s.reserveCapacity(f.values.count)
            for x in f.values { s.append(d.score(x)) }
            samples += f.values.count
            scores.append(s)
        }
        let nanosPerSample = Double(DispatchTime.now().uptimeNanoseconds - t0) / Double(max(samples, 1))
        var fixed: [String: Double] = [:]
        for p in NABScorer.Profile.all {
            fixed[p.name] = NABScorer.normalise(NABScorer.raw(corpus, scores: scores, threshold: NoveltyDetector.alertThreshold, profile: p),
                                                windows: corpus.windowCount, profile: p)
        }
        let best = NABScorer.score(corpus, scores: scores)
        if json {
            var obj: [String: Any] = fixed
            obj["threshold"] = NoveltyDetector.alertThreshold
            obj["best_threshold_scores"] = Dictionary(uniqueKeysWithValues: best.map { ($0.profile, $0.score) })
            obj["files"] = corpus.files.count
            obj["windows"] = corpus.windowCount
            obj["ns_per_sample"] = nanosPerSample
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("NAB \(category): \(corpus.files.count) files, \(corpus.windowCount) windows, \(samples) samples; detector threshold \(NoveltyDetector.alertThreshold) (fixed)")
        for p in NABScorer.Profile.all {
            let b = best.first { $0.profile == p.name }!
            print("  " + p.name.padding(toLength: 20, withPad: " ", startingAt: 0) + String(format: "%6.2f   (best threshold %.3f: %.2f)", fixed[p.name]!, b.threshold, b.score))
        }
        print(String(format: "  cost: %.1f ns per sample", nanosPerSample))
    }
}
