import ArgumentParser
import Foundation
import TwinCore
import TwinStorage

struct UsersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "users", abstract: "Logged-in user sessions.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var at: AtOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try showEntities(.users, columns: [
            Column(header: "USER", attribute: "user"), Column(header: "TTY", attribute: "tty"), Column(header: "FROM", attribute: "host"),
            Column(header: "LOGIN", attribute: "login_time"), Column(header: "PID", attribute: "pid"),
        ], store: store, at: at, output: output, sort: { $0.key < $1.key })
    }
}
