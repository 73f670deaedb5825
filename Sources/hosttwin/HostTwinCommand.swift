import ArgumentParser
import TwinCore

/// `hosttwin`: a live, versioned digital twin of this Linux host.
@main
struct HostTwinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hosttwin",
        abstract: "A live, versioned digital twin of a Linux host.",
        discussion: """
        `hosttwin run` observes this host every second into an embedded store and serves it on http://127.0.0.1:9977. \
        The other commands read that store, while run is running or after: the host now, or as it was at any time \
        (--at), what changed (diff), and the stored series.

        TIME values accept RFC 3339, Unix seconds, `now`, and relative forms like -5m, -2h, -1d.
        """,
        version: "0.1.0",
        subcommands: [
            RunCommand.self, AgentCommand.self, ServeCommand.self, FleetCommand.self, DigestCommand.self, CompareCommand.self, HeadroomCommand.self, DepsCommand.self, StatusCommand.self, TopCommand.self,
            PsCommand.self, PortsCommand.self, MountsCommand.self, ServicesCommand.self,
            InterfacesCommand.self, PackagesCommand.self, UsersCommand.self, FilesCommand.self,
            StateCommand.self, DiffCommand.self, EventsCommand.self, TimelineCommand.self, SQLCommand.self, QueryCommand.self, DetectCommand.self, ForecastCommand.self, CapacityCommand.self, AnomaliesCommand.self, ExplainCommand.self, MaintenanceWindowCommand.self, AdviseCommand.self,
            SeriesCommand.self, SamplesCommand.self, ExportCommand.self,
            MetricsCommand.self, CollectorsCommand.self,
            ImportCommand.self, MigrateCommand.self, CheckCommand.self, RepairCommand.self, BenchCommand.self,
            RulesCommand.self, AlertsCommand.self, SilenceCommand.self, ActionsCommand.self, ComplianceCommand.self, TokenCommand.self, AuditCommand.self, KeyCommand.self,
        ]
    )
}
