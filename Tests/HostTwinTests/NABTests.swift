import Foundation
import Testing
import TwinAnalytics

/// The NAB scorer reproduces the published detectors' scores on the realAWSCloudwatch subset from
/// their own per-row outputs (../shared/data/nab/SCOREBOARD.md).
@Suite struct NABTests {
    static let root: String? = Fixtures.sharedData.map { $0 + "/nab" }

    /// Per-row scores of a detector from scorer_fixture/<name>_anomaly_scores.csv.gz, aligned to the corpus.
    static func fixtureScores(_ name: String, corpus: NABCorpus, root: String) throws -> [[Double]] {
        let text = String(decoding: try NABCorpus.gunzip(root + "/scorer_fixture/\(name)_anomaly_scores.csv.gz"), as: UTF8.self)
        var byFile: [String: [Int64: Double]] = [:]
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",")
            guard f.count == 3, let t = NABCorpus.parseTime(f[1]), let v = Double(f[2]) else { continue }
            byFile[String(f[0]), default: [:]][t] = v
        }
        return try corpus.files.map { file in
            let rows = try #require(byFile[file.name], "\(name) has no rows for \(file.name)")
            return try file.timestamps.map { try #require(rows[$0], "\(name): no score for \(file.name) at \($0)") }
        }
    }

    @Test(.enabled(if: root != nil, "needs ../shared/data/nab; absent here"))
    func reproducesTheScoreboard() throws {
        let root = try #require(Self.root)
        let corpus = try NABCorpus.load(root: root, category: "realAWSCloudwatch")
        #expect(corpus.files.count == 17 && corpus.windowCount == 30)
        let expected: [String: [Double]] = [
            "numenta": [73.42, 68.75, 76.72],
            "ARTime": [69.92, 61.60, 75.50],
            "windowedGaussian": [31.24, 4.92, 42.97],
        ]
        for (name, want) in expected {
            let results = NABScorer.score(corpus, scores: try Self.fixtureScores(name, corpus: corpus, root: root))
            for (r, w) in zip(results, want) {
                #expect(abs(r.score - w) < 0.005, "\(name) \(r.profile): \(r.score) (threshold \(r.threshold)), published \(w)")
            }
        }
        let null = NABScorer.score(corpus, scores: corpus.files.map { [Double](repeating: 0.5, count: $0.timestamps.count) })
        #expect(null.allSatisfy { abs($0.score) < 1e-9 }, "\(null.map(\.score))")
        // A perfect detector: only each window's first row.
        let perfect = NABScorer.score(corpus, scores: corpus.files.map { f in
            var s = [Double](repeating: 0, count: f.timestamps.count)
            for w in f.windows { s[w.lowerBound] = 1 }
            return s
        })
        #expect(perfect.allSatisfy { abs($0.score - 100) < 1e-9 }, "\(perfect.map(\.score))")
    }

    /// The leave-one-category-out tables of SCOREBOARD.md: per profile, per detector, column name → score.
    static func scoreboard(_ root: String) throws -> [String: [String: [String: Double]]] {
        let text = try String(contentsOfFile: root + "/SCOREBOARD.md", encoding: .utf8)
        var out: [String: [String: [String: Double]]] = [:]
        var profile: String?
        var header: [String] = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("### ") { profile = String(line.dropFirst(4)).replacingOccurrences(of: "reward_low_FP", with: "reward_low_FP_rate").replacingOccurrences(of: "_rate_rate", with: "_rate"); header = []; continue }
            if line.hasPrefix("## ") { profile = nil; continue }
            guard let p = profile, line.hasPrefix("|"), !line.hasPrefix("|---") else { continue }
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            if header.isEmpty { header = cells; continue }
            for (h, c) in zip(header.dropFirst(), cells.dropFirst()) { out[p, default: [:]][cells[0], default: [:]][h] = Double(c) }
        }
        return out
    }

    @Test(.enabled(if: root != nil, "needs ../shared/data/nab; absent here"))
    func reproducesTheLeaveOneCategoryOutScoreboard() throws {
        let root = try #require(Self.root)
        let corpus = try NABCorpus.loadAll(root: root)
        #expect(corpus.files.count == 51 && corpus.windowCount == 97, "\(corpus.files.count) files, \(corpus.windowCount) windows")
        let board = try Self.scoreboard(root)
        #expect(board.count == 3)
        var compared = 0
        for name in ["numenta", "ARTime", "contextOSE", "windowedGaussian"] {
            let scores = try Self.fixtureScores(name, corpus: corpus, root: root)
            for p in NABScorer.Profile.all {
                let want = try #require(board[p.name]?[name], "SCOREBOARD has no \(p.name) row for \(name)")
                let all = NABScorer.score(corpus, scores: scores, profiles: [p])[0]
                #expect(abs(all.score - (want["all 51 files (threshold tuned on them)"] ?? .nan)) < 0.005, "\(name) \(p.name) all files: \(all.score)")
                let loco = NABScorer.loco(corpus, candidates: [scores], profile: p)
                #expect(loco.folds.count == 5)
                #expect(abs(loco.mean - (want["LOCO mean"] ?? .nan)) < 0.005, "\(name) \(p.name) LOCO mean: \(loco.mean)")
                for f in loco.folds {
                    #expect(abs(f.score - (want[f.category] ?? .nan)) < 0.005, "\(name) \(p.name) \(f.category): \(f.score) at \(f.threshold)")
                    compared += 1
                }
            }
        }
        #expect(compared == 4 * 3 * 5)
    }

    @Test func parsesNABTimes() {
        #expect(NABCorpus.parseTime("2014-02-14 14:30:00") == 1_392_388_200)
        #expect(NABCorpus.parseTime("2014-02-26 13:45:00.000000") == 1_393_422_300)
        #expect(NABCorpus.parseTime("1970-01-01 00:00:00") == 0)
        #expect(NABCorpus.parseTime("2014-13-01 00:00:00") == nil)
        #expect(NABCorpus.parseTime("garbage") == nil)
    }
}

/// The streaming detector: bounded scores, warm-up, alerts on a break of the known range, one alert
/// per event; and its NAB score at the fixed threshold does not regress.
@Suite struct DetectorTests {
    @Test func alertsOnceOnALevelShift() {
        var d = NoveltyDetector()
        var scores: [Double] = []
        for i in 0..<400 { scores.append(d.score(10 + sin(Double(i) / 5), at: Int64(i) * 300)) }
        #expect(scores.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(scores.allSatisfy { $0 < NoveltyDetector.alertThreshold }, "no alert on a steady wave")
        var after: [Double] = []
        for i in 0..<100 { after.append(d.score(30 + sin(Double(i) / 5), at: Int64(400 + i) * 300)) }
        let alerts = after.filter { $0 >= NoveltyDetector.alertThreshold }.count
        #expect(alerts == 1 && after[0] >= NoveltyDetector.alertThreshold, "one alert, at the shift: \(alerts)")
        var e = NoveltyDetector()
        #expect((0..<150).map { e.score($0 == 100 ? 1e9 : 1, at: Int64($0) * 60) }.allSatisfy { $0 == 0 }, "silent during warm-up")
        #expect(e.score(.nan, at: 9000) == 0 && e.score(.infinity, at: 9060) == 0)
    }

    @Test func alertsWhenASeriesFlatlinesLongerThanEver() {
        var d = NoveltyDetector()
        // A writer that is idle (0) for stretches of up to 40 samples between bursts: an idle stretch of 40
        // or less stays quiet, one longer than ever before alerts once it is clearly longer.
        var series: [Double] = []
        for burst in 0..<12 { series += (0..<20).map { Double($0 * 7 % 10) + 1 } + Array(repeating: 0, count: 40 - burst % 3 * 10) }
        series += (0..<20).map { Double($0 * 7 % 10) + 1 }
        var t: Int64 = 0
        func next() -> Int64 { t += 60; return t }
        let quiet = series.map { d.score($0, at: next()) }
        #expect(quiet.allSatisfy { $0 < NoveltyDetector.alertThreshold }, "idle stretches no longer than before stay quiet")
        let stalled = (0..<100).map { _ in d.score(0, at: next()) }
        let first = stalled.firstIndex { $0 >= NoveltyDetector.alertThreshold }
        #expect(first.map { $0 > 40 && $0 < 50 } == true, "alerts once the run clearly exceeds 40: \(String(describing: first))")
        // A series that never repeats a value for 10 samples does not alert on short repeats.
        var e = NoveltyDetector()
        var q: [Double] = []
        for i in 0..<405 {
            let x: Double = i >= 400 ? 3 : (i % 7 == 0 ? 1 : Double(i % 5))
            q.append(e.score(x, at: Int64(i) * 60))
        }
        #expect(q.allSatisfy { $0 < NoveltyDetector.alertThreshold })
    }

    /// The leave-one-category-out figures BENCHMARKS.md quotes (`hosttwin bench nab`) do not regress.
    @Test(.enabled(if: NABTests.root != nil, "needs ../shared/data/nab; absent here"))
    func leaveOneCategoryOutScores() throws {
        let corpus = try NABCorpus.loadAll(root: try #require(NABTests.root))
        let scores = corpus.files.map { f -> [Double] in
            var d = NoveltyDetector()
            return zip(f.values, f.timestamps).map { d.score($0, at: $1) }
        }
        let standard = NABScorer.loco(corpus, candidates: [scores], profile: .standard)
        #expect(standard.mean >= 77.9, "standard LOCO mean \(standard.mean)")
        #expect(standard.folds.allSatisfy { $0.score >= 72.1 }, "\(standard.folds.map { "\($0.category) \($0.score)" })")
        let lowFP = NABScorer.loco(corpus, candidates: [scores], profile: .rewardLowFP)
        #expect(lowFP.mean >= 73.6, "reward_low_FP LOCO mean \(lowFP.mean)")
    }
}
