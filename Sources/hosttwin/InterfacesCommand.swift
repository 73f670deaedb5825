import ArgumentParser
import Foundation
import TwinCore
import TwinStorage

struct InterfacesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "interfaces", abstract: "Network interfaces.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var at: AtOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try showEntities(.interfaces, columns: [
            Column(header: "NAME", attribute: "name"), Column(header: "STATE", attribute: "operstate"), Column(header: "MTU", attribute: "mtu"),
            Column(header: "SPEED", attribute: "speed_mbps"), Column(header: "ADDRESS", attribute: "address"),
        ], store: store, at: at, output: output, sort: { $0.key < $1.key })
    }
}
