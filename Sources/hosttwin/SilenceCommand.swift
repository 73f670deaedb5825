import ArgumentParser
import Foundation
import TwinCore
import TwinRules
import TwinStorage

/// `hosttwin silence add|list|expire`: silences over alert labels, kept in the store.
struct SilenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "silence",
        abstract: "Silence alerts for a while: matching alerts are still tracked and stored, but neither notified nor remediated.",
        discussion: "Matchers are PromQL's: name=value, name!=value, name=~regex, name!~regex (regexes anchored). A running twin sees a new or expired silence at its next evaluation. Every change is recorded in the audit log.",
        subcommands: [Add.self, List.self, Expire.self]
    )

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a silence; prints its id.")
        @OptionGroup var store: StoreOptions
        @Argument(help: ArgumentHelp("Matchers over alert labels, e.g. alertname=DiskFull host=~web-.*", valueName: "MATCHER")) var matchers: [String]
        @Option(name: .customLong("for"), help: ArgumentHelp("How long, e.g. 2h.", valueName: "DURATION")) var duration: String = "1h"
        @Option(parsing: .unconditional, help: ArgumentHelp("When it starts (default now).", valueName: "TIME")) var start: String = "now"
        @Option(help: "Why (required).") var comment: String
        @Option(help: "Who (default: the user running the command).") var author: String?
        @OptionGroup var output: OutputOptions

        func run() throws {
            do { _ = try AlertSuppression.matchers(matchers) } catch { throw CLIError("\(error)") }
            let starts = try parseTime(start, "--start")
            let length: Int64
            do { length = try TwinTime.parseDuration(duration) } catch { throw CLIError("--for: \(error)") }
            guard length > 0 else { throw CLIError("--for must be more than 0") }
            guard !comment.trimmingCharacters(in: .whitespaces).isEmpty else { throw CLIError("--comment: say why the alerts are silenced") }
            let who = author ?? ProcessInfo.processInfo.environment["USER"] ?? "uid \(getuid())"
            let s = SilenceRecord(created: TwinTime.nowMillis(), starts: starts, ends: starts + length, matchers: matchers, comment: comment, author: who)
            let dataDir = store.resolvedDataDir
            let id = try store.open().insertSilence(s)
            try TokenCommand.audit(store, "silence.add", "id=\(id) matchers=\(matchers.joined(separator: ",")) until=\(TwinTime.rfc3339(s.ends))")
            if output.json { try printJSON(["id": id]) } else { print("silence \(id): \(matchers.joined(separator: " ")) until \(TwinTime.rfc3339(s.ends))") }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The silences not yet ended (--all: every one).")
        @OptionGroup var store: StoreOptions
        @Flag(help: "Ended silences too.") var all = false
        @OptionGroup var output: OutputOptions

        func run() throws {
            let now = TwinTime.nowMillis()
            let list = try store.openForReading().silences(endingAfter: all ? .min : now)
            if output.json { try printJSON(list); return }
            if list.isEmpty { print(all ? "no silences" : "no active or future silences"); return }
            printTable(["ID", "STATE", "MATCHERS", "STARTS", "ENDS", "AUTHOR", "COMMENT"], list.map { s in
                [String(s.id), s.isActive(at: now) ? "active" : s.ends <= now ? "ended" : "pending", s.matchers.joined(separator: " "),
                 TwinTime.rfc3339(s.starts), TwinTime.rfc3339(s.ends), s.author, s.comment]
            })
        }
    }

    struct Expire: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End a silence now.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The silence's id (`hosttwin silence list`).") var id: Int64

        func run() throws {
            let dataDir = store.resolvedDataDir
            guard try store.open().expireSilence(id: id, at: TwinTime.nowMillis()) else { throw CLIError("no active silence \(id)") }
            try TokenCommand.audit(store, "silence.expire", "id=\(id)")
            print("silence \(id) expired")
        }
    }
}
