import ArgumentParser
import Foundation
import TwinCore
import TwinStorage

struct PackagesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "packages", abstract: "Installed packages.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var at: AtOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try showEntities(.packages, columns: [
            Column(header: "NAME", attribute: "name"), Column(header: "VERSION", attribute: "version"), Column(header: "ARCH", attribute: "architecture"),
        ], store: store, at: at, output: output, sort: { $0.key < $1.key })
    }
}
