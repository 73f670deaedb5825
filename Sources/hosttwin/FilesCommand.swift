import ArgumentParser
import Foundation
import TwinCollectors
import TwinCore
import TwinRuntime
import TwinStorage

/// `hosttwin files list|history|show|diff|restore`: the configuration history the `files` collector keeps.
struct FilesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "files",
        abstract: "Configuration history: watched files as they were, their changes, and the twin's rollback.",
        discussion: """
        `hosttwin run` watches /etc by default (`--watch PATH`, repeatable, replaces it): every file and directory's \
        type, mode, owner, size, mtime and SHA-256, and the text of text files up to 64 KiB as versions (sensitive files' \
        text sealed at rest). It also records set-user-ID files found under program directories and /tmp.
        """,
        subcommands: [List.self, History.self, Show.self, Diff.self, Restore.self]
    )

    /// Validates watch paths: absolute, without `.`/`..` parts, trailing slashes removed, each once.
    static func watchList(_ paths: [String]) throws -> [String] {
        var out: [String] = []
        for p in paths {
            guard p.hasPrefix("/"), !p.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else {
                throw CLIError("--watch \(p): give an absolute path without . or .. parts")
            }
            let clean = p.count > 1 && p.hasSuffix("/") ? String(p.dropLast(p.reversed().prefix { $0 == "/" }.count)) : p
            let path = clean.isEmpty ? "/" : clean
            if !out.contains(path) { out.append(path) }
        }
        return out
    }

    struct PathOptions: ParsableArguments {
        @OptionGroup var store: StoreOptions
        @Argument(help: ArgumentHelp("The file's absolute path.", valueName: "PATH")) var path: String
        @Option(help: ArgumentHelp("At a hub: the host whose file it is.", valueName: "NAME")) var host: String?
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The watched files (and SUID files) as they were at a time.")
        @OptionGroup var store: StoreOptions
        @OptionGroup var at: AtOptions
        @Flag(help: "Only set-user-ID and set-group-ID files.") var suid = false
        @Option(help: ArgumentHelp("Only paths under this one.", valueName: "PATH")) var under: String?
        @OptionGroup var output: OutputOptions

        func run() throws {
            try showEntities(.files, columns: [
                Column(header: "PATH", attribute: "path"), Column(header: "TYPE", attribute: "type"), Column(header: "MODE", attribute: "mode"),
                Column(header: "OWNER", attribute: "owner"), Column(header: "GROUP", attribute: "group"), Column(header: "SIZE", attribute: "size"),
                Column(header: "MTIME", attribute: "mtime"),
                Column(header: "SHA256", attribute: "sha256") { $0.map { String($0.description.prefix(12)) } ?? "-" },
            ], store: store, at: at, output: output, sort: { str($0, "path") < str($1, "path") }, filter: { v in
                (!suid || v.attributes["setuid"] == true) && (under.map { FileCollector.isUnder(str(v, "path"), $0) } ?? true)
            })
        }
    }

    struct History: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every version of a file in a time range: when, hash, size, mode, owner.")
        @OptionGroup var target: PathOptions
        @Option(parsing: .unconditional, help: ArgumentHelp("From (default -7d).", valueName: "TIME")) var from: String = "-7d"
        @Option(parsing: .unconditional, help: ArgumentHelp("To (default now).", valueName: "TIME")) var to: String = "now"
        @OptionGroup var output: OutputOptions

        func run() throws {
            let t0 = try parseTime(from, "--from"), t1 = try parseTime(to, "--to")
            let s = try target.store.openForReading()
            func mine(_ v: EntityVersion) -> Bool {
                v.attributes["path"] == .string(target.path) && (target.host.map { v.attributes["host"] == .string($0) } ?? true)
            }
            var versions = try s.state(at: t0, kinds: [.files]).filter(mine)
            versions += try s.versionsStarting(from: t0 + 1, to: t1, kinds: [.files]).filter(mine)
            versions.sort { $0.validFrom < $1.validFrom }
            if output.json { try printJSON(versions.map { EntityJSON(version: $0) }); return }
            if versions.isEmpty { print("no version of \(target.path) between \(TwinTime.rfc3339(t0)) and \(TwinTime.rfc3339(t1))"); return }
            printTable(["FROM", "TO", "TYPE", "MODE", "OWNER", "SIZE", "SHA256"], versions.map { v in
                [TwinTime.rfc3339(v.validFrom), v.validTo.map(TwinTime.rfc3339) ?? "now", str(v, "type"), str(v, "mode"),
                 "\(str(v, "owner")):\(str(v, "group"))", str(v, "size"), String(str(v, "sha256").prefix(12))]
            })
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A file's text as it was at a time (text files up to 64 KiB).")
        @OptionGroup var target: PathOptions
        @Option(parsing: .unconditional, help: ArgumentHelp("When (default now).", valueName: "TIME")) var at: String = "now"
        @OptionGroup var output: OutputOptions

        func run() throws {
            let t = try parseTime(at, "--at")
            let s = try target.store.openForReading()
            guard let v = try FileRestore.version(s, path: target.path, at: t, host: target.host) else {
                throw CLIError("the twin has no version of \(target.path) at \(TwinTime.rfc3339(t)) (`hosttwin files list` shows the watched files)")
            }
            let text: String
            do { text = try FileRestore.text(of: v, path: target.path) } catch { throw CLIError("\(error)") }
            if output.json { try printJSON(["path": target.path, "valid_from": TwinTime.rfc3339(v.validFrom), "sha256": str(v, "sha256"), "text": text]); return }
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }

    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What changed in a file between two times: a unified diff of its text, and its mode and owner.")
        @OptionGroup var target: PathOptions
        @Option(parsing: .unconditional, help: ArgumentHelp("From (default -1d).", valueName: "TIME")) var from: String = "-1d"
        @Option(parsing: .unconditional, help: ArgumentHelp("To (default now).", valueName: "TIME")) var to: String = "now"
        @OptionGroup var output: OutputOptions

        func run() throws {
            let t0 = try parseTime(from, "--from"), t1 = try parseTime(to, "--to")
            let s = try target.store.openForReading()
            let a = try FileRestore.version(s, path: target.path, at: t0, host: target.host)
            let b = try FileRestore.version(s, path: target.path, at: t1, host: target.host)
            guard a != nil || b != nil else { throw CLIError("the twin has no version of \(target.path) at \(TwinTime.rfc3339(t0)) or \(TwinTime.rfc3339(t1))") }
            func text(_ v: EntityVersion?) throws -> String {
                guard let v else { return "" }
                do { return try FileRestore.text(of: v, path: target.path) } catch { throw CLIError("\(error)") }
            }
            let name = { (v: EntityVersion?, t: Int64) in v == nil ? "/dev/null" : "\(target.path) (\(TwinTime.rfc3339(t)))" }
            let diff = TextDiff.unified(try text(a), try text(b), from: name(a, t0), to: name(b, t1))
            let attributes = TwinEvent.changes(from: a?.attributes ?? [:], to: b?.attributes ?? [:])
                .filter { ["type", "mode", "owner", "group", "uid", "gid", "target"].contains($0.attribute) }
            if output.json {
                try printJSON(DiffJSON(path: target.path, from: TwinTime.rfc3339(t0), to: TwinTime.rfc3339(t1), existed: [a != nil, b != nil],
                                       changes: attributes, diff: diff))
                return
            }
            for c in attributes { print("\(c.attribute): \(c.old?.description ?? "-") -> \(c.new?.description ?? "-")") }
            if diff.isEmpty && attributes.isEmpty { print("\(target.path): no change between \(TwinTime.rfc3339(t0)) and \(TwinTime.rfc3339(t1))") }
            print(diff, terminator: "")
        }

        struct DiffJSON: Encodable { var path, from, to: String; var existed: [Bool]; var changes: [TwinEvent.Change]; var diff: String }
    }

    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a file back as it was at a time (dry run unless --apply).",
            discussion: "Refused when the file changed since the twin's last version of it, when it is not under a watched path, or when only its hash was kept. Written atomically (a new file renamed over the old) with the owner and mode it had then. Every --apply is recorded in the audit log."
        )
        @OptionGroup var store: StoreOptions
        @Argument(help: ArgumentHelp("The file's absolute path.", valueName: "PATH")) var path: String
        @Option(parsing: .unconditional, help: ArgumentHelp("The time whose version to restore.", valueName: "TIME")) var at: String
        @Flag(help: "Write it (default: show what would change).") var apply = false
        @OptionGroup var output: OutputOptions

        func run() throws {
            let t = try parseTime(at, "--at")
            let dataDir = store.resolvedDataDir
            let plan: FileRestore.Plan
            do { plan = try FileRestore.plan(try store.openForReading(), path: path, at: t) } catch {
                if apply { try? TokenCommand.audit(store, "files.restore", "path=\(path) at=\(TwinTime.rfc3339(t)) refused: \(error)") }
                throw CLIError("\(error)")
            }
            let what = "\(path) as of \(TwinTime.rfc3339(plan.version.validFrom)): mode \(FileCollector.octal(plan.mode)), owner \(plan.uid):\(plan.gid), \(plan.text.utf8.count) bytes"
            if apply {
                do { try FileRestore.apply(plan) } catch {
                    try? TokenCommand.audit(store, "files.restore", "path=\(path) at=\(TwinTime.rfc3339(t)) failed: \(error)")
                    throw CLIError("\(error)")
                }
                try TokenCommand.audit(store, "files.restore", "path=\(path) at=\(TwinTime.rfc3339(t)) sha256=\(str(plan.version, "sha256"))")
            }
            if output.json {
                try printJSON(["path": path, "version": TwinTime.rfc3339(plan.version.validFrom), "applied": apply ? "true" : "false", "diff": plan.diff])
                return
            }
            print(apply ? "restored \(what)" : "would restore \(what) (dry run; --apply writes it)")
            print(plan.diff.isEmpty ? "(the text is the same; owner and mode are set as they were)" : plan.diff, terminator: plan.diff.isEmpty ? "\n" : "")
        }
    }
}
