import ArgumentParser
import Foundation
import TwinCore
import TwinStorage

struct ServicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "services", abstract: "systemd units (when systemd runs on the host).")
    @OptionGroup var store: StoreOptions
    @OptionGroup var at: AtOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try showEntities(.services, columns: [
            Column(header: "UNIT", attribute: "name"), Column(header: "LOAD", attribute: "load"), Column(header: "ACTIVE", attribute: "active"),
            Column(header: "SUB", attribute: "sub"), Column(header: "DESCRIPTION", attribute: "description"),
        ], store: store, at: at, output: output, sort: { $0.key < $1.key })
    }
}
