import ArgumentParser
import Foundation
import TwinCore
import TwinSecurity
import TwinStorage

/// `hosttwin key rotate|list`: the data keys that seal sensitive values at rest.
struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Rotate and list the keys that seal sensitive values at rest (DATA_DIR/keys).",
        subcommands: [Rotate.self, List.self]
    )

    struct Rotate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a new current key; with --retire, re-seal every value under the new key and delete the old keys.",
            discussion: "Safe while `hosttwin run` runs: it picks up the new key within a second. After --retire no value remains sealed under a retired key."
        )
        @OptionGroup var store: StoreOptions
        @Flag(help: "Re-seal every stored value under the new key, then delete the other keys.") var retire = false
        @OptionGroup var output: OutputOptions

        func run() throws {
            let dataDir = store.resolvedDataDir
            let twin = try store.open()
            let keys = try KeyRing(dataDir: dataDir, create: true)
            let id = try keys.rotate()
            var resealed = 0, deleted: [String] = []
            if retire {
                (resealed, deleted) = try PolicyCipher(policy: DataPolicy(), keys: keys).retireOldKeys(store: twin)
            }
            try TokenCommand.audit(store, "key.rotate", "current=\(id)" + (retire ? " resealed=\(resealed) retired=\(deleted.joined(separator: ","))" : ""))
            if output.json {
                struct Out: Encodable { var current: String; var resealed: Int; var retired: [String] }
                try printJSON(Out(current: id, resealed: resealed, retired: deleted))
            } else {
                print("current key \(id)" + (retire ? "; \(resealed) versions re-sealed, retired \(deleted.isEmpty ? "none" : deleted.joined(separator: ", "))" : "; older keys kept (--retire re-seals and deletes them)"))
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The keys present and the current one (never their bytes).")
        @OptionGroup var store: StoreOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            let keys = try KeyRing(dataDir: store.resolvedDataDir, create: false)
            guard keys.canOpen else { throw CLIError("no readable keys in \(keys.directory) (run `hosttwin run` once, or run this as the store's owner)") }
            if output.json {
                struct Out: Encodable { var current: String?; var keys: [String] }
                try printJSON(Out(current: keys.currentID, keys: keys.keyIDs))
            } else {
                for id in keys.keyIDs { print(id + (id == keys.currentID ? "  (current)" : "")) }
            }
        }
    }
}
