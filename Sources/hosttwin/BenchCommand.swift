import ArgumentParser
import Foundation
import TwinCollectors
import TwinCore
import TwinServer
import TwinSecurity
import TwinStorage

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Benchmarks (build with -c release).", subcommands: [BenchCollect.self, BenchFidelity.self, BenchHistory.self, BenchObservation.self, BenchStorage.self, BenchSync.self, BenchHub.self, BenchQuery.self, BenchNAB.self, BenchForecast.self, BenchPlacement.self, BenchScenarios.self, BenchMaintenance.self, BenchRules.self, BenchFiles.self, BenchRemoteWrite.self])
}
