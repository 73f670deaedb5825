import ArgumentParser
import Foundation
import TwinCore
import TwinServer

/// `hosttwin top`: a refreshing terminal view of a running twin, fed by its live stream.
struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "A live terminal view of a running `hosttwin run` (its /api/v1/twin/live stream).",
        discussion: "Redraws every tick: CPU, memory, load, busiest processes, filesystems, interfaces, and the latest state changes. Ctrl-C quits."
    )

    @Option(help: ArgumentHelp("Port of the twin on 127.0.0.1.", valueName: "PORT")) var port: Int = 9977
    @Option(help: ArgumentHelp("Stop after this many ticks.", valueName: "N")) var count: Int?
    @Flag(help: "Print each tick as one line of JSON instead of drawing the screen.") var json = false
    @Option(name: .customLong("token-file"), help: ArgumentHelp("A file holding the token to send, for a server that requires one (default $HOSTTWIN_TOKEN).", valueName: "FILE"))
    var tokenFile: String?

    struct Message: Decodable {
        struct Event: Decodable { var time: String; var type: String; var kind: String?; var key: String? }
        var time: String
        var summary: HostSummary
        var events: [Event]
    }

    func run() throws {
        var frames = 0
        var recent: [String] = []
        let token = try RemoteOptions.token(file: tokenFile)
        let status = LoopbackHTTP.stream(port: port, "/api/v1/twin/live", headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:]) { line in
            guard line.hasPrefix("data: ") else { return true }
            let data = String(line.dropFirst(6))
            frames += 1
            if json {
                print(data)
            } else if let m = try? JSONDecoder().decode(Message.self, from: Data(data.utf8)) {
                for e in m.events {
                    let sign = e.type == "appeared" ? "+" : e.type == "disappeared" ? "-" : "~"
                    recent.append("\(e.time.suffix(9).dropLast())  \(sign) \(e.kind ?? "") \(e.key ?? "")")
                }
                recent = Array(recent.suffix(8))
                var screen = "\u{1B}[H\u{1B}[2J" + summaryLines(m.summary).joined(separator: "\n")
                screen += "\n\nLATEST CHANGES\n" + (recent.isEmpty ? "(none yet)" : recent.joined(separator: "\n")) + "\n"
                print(screen, terminator: "")
            }
            fflush(nil) // all output streams
            return count.map { frames < $0 } ?? true
        }
        guard let status else { throw CLIError("no twin answers on 127.0.0.1:\(port); start `hosttwin run` or pass --port") }
        guard status != 401 else { throw CLIError("the twin on 127.0.0.1:\(port) needs a token: --token-file FILE or $HOSTTWIN_TOKEN (`hosttwin token create --role reader`)") }
        guard status == 200 else { throw CLIError("the twin on 127.0.0.1:\(port) answered HTTP \(status) for its live stream (is it `hosttwin serve`? top needs `hosttwin run`)") }
    }
}
