import ArgumentParser
import Foundation
import TwinCore
import TwinStorage

struct MountsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mounts", abstract: "Mounted file systems (all of mountinfo).")
    @OptionGroup var store: StoreOptions
    @OptionGroup var at: AtOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try showEntities(.mounts, columns: [
            Column(header: "MOUNTPOINT", attribute: "mountpoint"), Column(header: "TYPE", attribute: "fstype"),
            Column(header: "RO", attribute: "ro"), Column(header: "DEVICE", attribute: "device"), Column(header: "OPTIONS", attribute: "options"),
        ], store: store, at: at, output: output, sort: { str($0, "mountpoint") < str($1, "mountpoint") })
    }
}
