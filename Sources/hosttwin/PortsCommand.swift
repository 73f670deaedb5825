import ArgumentParser
import Foundation
import TwinCore
import TwinStorage

struct PortsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ports", abstract: "Listening TCP and UDP sockets with their processes.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var at: AtOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try showEntities(.listeningPorts, columns: [
            Column(header: "PROTO", attribute: "protocol"), Column(header: "ADDRESS", attribute: "address"),
            Column(header: "PORT", attribute: "port"), Column(header: "PID", attribute: "pid"), Column(header: "PROCESS", attribute: "process"),
        ], store: store, at: at, output: output, sort: { (str($0, "protocol"), int($0, "port"), str($0, "address")) < (str($1, "protocol"), int($1, "port"), str($1, "address")) })
    }
}
