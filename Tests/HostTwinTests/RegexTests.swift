import Foundation
import Testing
import TwinCore

/// ``LinearRegex`` (issue 12: label regexes ran on a backtracking engine with no limit): the same answers
/// as a backtracking engine on ordinary patterns, captures included, and linear time on the patterns that
/// make backtracking engines explode.
@Suite struct RegexTests {
    static let patterns = [
        "abc", "a|b|cd", "a*", "a+b?", "(a|ab)(c|bcd)(d*)", "[a-c]+", "[^a-c]*", "x{2,3}", "x{2}", "x{2,}", "(?i)abc",
        "(?i:A)b", ".*foo.*", "foo.+", "\\d+\\.\\d+", "\\w+@\\w+\\.com", "\\s*x\\s*", "[[:alpha:]]+[[:digit:]]*", "(a*)*",
        "(a|b)*?b", "(.*?)(\\d+)", "(.+)(\\d+)", "node_(cpu|memory)_.*", "(?:ab)+|c", "^abc$", "a{0}b", "[\\d\\-]+", "\\x41\\x{42}",
        "(?s).", "a.c", "[]a]+", "[^]a]", "\\bfoo\\b.*", "(x)?y", "(?<first>\\w+)-(?<second>\\w+)", "é+", "(?i)straße",
        "[a-z0-9_]+(:[0-9]+)?", "((a)|b)+", "(a|)+", "(|a)+", "a{1,3}?a",
    ]
    static let inputs = [
        "", "a", "b", "ab", "abc", "abcd", "abbcd", "ABC", "aBc", "xx", "xxx", "xxxx", "foo", "afoob", "foobar", "12.5",
        "bob@host.com", "  x ", "abc123", "aaaa", "abab", "ab12", "node_cpu_seconds_total", "node_disk", "c", "b", "-12-3",
        "AB", "\n", "abc\n", "]a", "x", "foo bar", "y", "xy", "one-two", "ééé", "STRASSE", "host:9100", "host", "Ab", "aa", "aaa",
    ]

    /// Where RE2 (and so Prometheus) and ICU differ on purpose: ICU's `$` also matches before a final
    /// newline, its POSIX classes and case folding are Unicode-wide, and it records an empty last
    /// iteration of a group under `*`/`+` that RE2 does not take.
    static func differsOnPurpose(_ p: String, _ s: String) -> Bool {
        (p == "^abc$" && s == "abc\n") || (p.hasPrefix("[[:alpha:]]") && s == "ééé") || (p == "(?i)straße" && s == "STRASSE")
            || ["(a*)*", "(a|)+", "(|a)+"].contains(p)
    }

    @Test func agreesWithABacktrackingEngine() throws {
        for p in Self.patterns {
            let mine = try LinearRegex(p)
            let icu = try NSRegularExpression(pattern: "^(?:" + p + ")\\z", options: [.dotMatchesLineSeparators])
            for s in Self.inputs where !Self.differsOnPurpose(p, s) {
                let ns = s as NSString
                let m = icu.firstMatch(in: s, range: NSRange(location: 0, length: ns.length))
                #expect(mine.wholeMatch(s) == (m != nil), "\(p) on \(s.debugDescription)")
                guard let m, let groups = mine.wholeMatchGroups(s) else { continue }
                #expect(groups.count == m.numberOfRanges, "\(p)")
                for g in 0..<min(groups.count, m.numberOfRanges) {
                    let r = m.range(at: g)
                    #expect(groups[g] == (r.location == NSNotFound ? nil : ns.substring(with: r)), "\(p) on \(s.debugDescription) group \(g)")
                }
            }
        }
    }

    /// Patterns whose backtracking cost is exponential in the input (2^40 steps here) finish at once.
    @Test func catastrophicPatternsRunInLinearTime() throws {
        let input = String(repeating: "a", count: 40) + "!"
        for p in ["(a+)+", "(a|a)*", "(a|aa)+", "(a*)*b", "(.*a){20}", "(x+x+)+y", "((a+)*)+$"] {
            #expect(try LinearRegex(p).wholeMatch(input) == false, "\(p)")
        }
        #expect(try LinearRegex("(a+)+!").wholeMatch(input))
        // A long label value against a large pattern: bounded by pattern × input.
        #expect(try LinearRegex("(a|b|c|d)*[0-9]{100}").wholeMatch(String(repeating: "abcd", count: 10_000)) == false)
    }

    @Test func refusesWhatRE2Refuses() throws {
        for p in ["(a", "a)", "[a", "a**", "*a", "a{1001}", "(a{1000}){1000}", "\\1", "(?=a)", "(?<!a)b", "[z-a]", "\\", "\\q", "(?P<n>a)(?P<n>b)", "[[:nope:]]"] {
            #expect(throws: LinearRegex.SyntaxError.self, "\(p)") { try LinearRegex(p) }
        }
        // A brace that is no repeat is a literal, as in RE2.
        #expect(try LinearRegex("a{,2}").wholeMatch("a{,2}"))
        #expect(try LinearRegex("x{").wholeMatch("x{"))
        // The RE2 side of the purposeful differences above.
        #expect(try !LinearRegex("^abc$").wholeMatch("abc\n"))
        #expect(try !LinearRegex("[[:alpha:]]+").wholeMatch("ééé"))
        #expect(try LinearRegex("(a*)*").wholeMatchGroups("aaaa") == ["aaaa", "aaaa"])
        #expect(try LinearRegex("(?i)straße").wholeMatch("STRAßE"))
    }
}
