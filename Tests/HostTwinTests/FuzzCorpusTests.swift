import Foundation
import Testing
import TwinFuzzTargets

/// Replays every saved fuzz corpus (Fuzz/corpus/TARGET, grown by `scripts/fuzz.sh`) through the same
/// target functions libFuzzer drives, plus the minimised inputs of crashes found and fixed: none may
/// crash or hang (issue 12).
@Suite struct FuzzCorpusTests {
    static let corpusRoot = Fixtures.packageRoot + "/Fuzz/corpus"

    @Test(arguments: FuzzTargets.all.keys.sorted())
    func corpusReplays(_ target: String) throws {
        let run = try #require(FuzzTargets.all[target])
        let dir = Self.corpusRoot + "/" + target
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        #expect(!files.isEmpty, "no saved corpus for \(target): run scripts/fuzz.sh \(target) 60")
        for f in files.sorted() {
            run(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f))))
        }
        // Inputs every target must survive, whatever it parses.
        for input in ["", "\0", String(repeating: "(", count: 5000), String(repeating: "9", count: 400), "\u{FFFD}\u{10FFFF}", "-1e300 +inf nan"] {
            run(Array(input.utf8))
        }
        run([0xff, 0xfe, 0x00, 0x80, 0xc0, 0xc1, 0xf5]) // invalid UTF-8
    }
}
