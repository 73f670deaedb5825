import ArgumentParser
import Foundation
import TwinAnalytics
import TwinCore

/// `hosttwin bench placement`: a public per-host CPU trace replayed as a fleet, and a stream of jobs
/// placed on it by headroom (forecast spare capacity), by the least loaded host now, and round-robin.
struct BenchPlacement: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "placement",
        abstract: "Place a seeded stream of jobs on hosts replayed from a public CPU trace: headroom vs least-loaded vs round-robin.",
        discussion: """
        The fleet is NAB's realAWSCloudwatch CPU utilisation files (--nab, default ../shared/data/nab): each \
        ec2_/rds_cpu_utilization_*.csv is one host's CPU in percent of the host, every 5 minutes for 14 days. \
        After --history-days of history, jobs arrive (Poisson, --jobs-per-hour), each needing a uniform 5–25 % \
        of a host for a uniform 1–12 h. A policy puts a job on a host of the fleet or, when it judges none \
        fits, on an extra (dedicated) host: headroom ranks hosts by the peak of their forecast's 80 % upper \
        bound over the job's duration (the same forecaster as `hosttwin headroom`, refitted hourly on the last \
        3 days, daily season) plus the jobs placed there; least-loaded by the CPU now plus its jobs; \
        round-robin takes the next host and never adds one. Reported: hosts needed (the fleet plus extras) and \
        overload minutes (5-minute steps where a host's real CPU plus its running jobs exceeds 100 %, × 5).
        """
    )
    @Option(help: ArgumentHelp("NAB folder (data/realAWSCloudwatch).", valueName: "DIR")) var nab = "../shared/data/nab"
    @Option(help: ArgumentHelp("Days of history before the first job.", valueName: "N")) var historyDays = 7
    @Option(help: ArgumentHelp("Mean job arrivals per hour.", valueName: "N")) var jobsPerHour = 2.0
    @Option(help: ArgumentHelp("Seed of the job stream.", valueName: "N")) var seed: UInt64 = 1
    @OptionGroup var output: OutputOptions

    struct Job { var start: Int, steps: Int, demand: Double }
    struct Outcome: Encodable {
        var policy: String
        var hostsNeeded: Int
        var extraHosts: Int
        var overloadMinutes: Int
        var overloadedJobs: Int
        enum CodingKeys: String, CodingKey {
            case policy, hostsNeeded = "hosts_needed", extraHosts = "extra_hosts", overloadMinutes = "overload_minutes", overloadedJobs = "jobs_that_met_overload"
        }
    }
    struct Result: Encodable {
        var hosts: [String]
        var steps: Int
        var jobs: Int
        var outcomes: [Outcome]
    }

    static let stepsPerHour = 12, period = 288

    func run() throws {
        let folder = nab + "/data/realAWSCloudwatch"
        guard let files = try? FileManager.default.contentsOfDirectory(atPath: folder) else { throw CLIError("no \(folder) (pass --nab DIR)") }
        let names = files.filter { ($0.hasPrefix("ec2_cpu_utilization_") || $0.hasPrefix("rds_cpu_utilization_")) && $0.hasSuffix(".csv") }.sorted()
        let traces: [[Double]] = try names.map { name in
            let text = try String(contentsOfFile: folder + "/" + name, encoding: .utf8)
            return text.split(separator: "\n").dropFirst().compactMap { line in line.split(separator: ",").last.flatMap { Double($0.trimmingCharacters(in: .whitespaces)) } }
        }
        guard let steps = traces.map(\.count).min(), steps > 0 else { throw CLIError("no CPU utilisation files in \(folder)") }
        let first = historyDays * 24 * Self.stepsPerHour
        guard first + 24 * Self.stepsPerHour < steps else { throw CLIError("--history-days \(historyDays) leaves less than a day of \(steps) steps") }
        var rng = SeededRandom(seed: seed)
        var jobs: [Job] = []
        var t = Double(first)
        while true {
            t += -log(1 - Double.random(in: 0..<1, using: &rng)) / jobsPerHour * Double(Self.stepsPerHour)
            guard Int(t) < steps else { break }
            jobs.append(Job(start: Int(t), steps: Int.random(in: 12...144, using: &rng), demand: Double.random(in: 5...25, using: &rng)))
        }
        let outcomes = ["headroom", "least-loaded", "round-robin"].map { simulate($0, traces: traces, steps: steps, jobs: jobs) }
        let r = Result(hosts: names.map { String($0.dropLast(4)) }, steps: steps, jobs: jobs.count, outcomes: outcomes)
        if output.json { try printJSON(r); return }
        print("\(names.count) hosts of NAB realAWSCloudwatch, \(steps) steps of 5 min; \(jobs.count) jobs (seed \(seed)) after \(historyDays) days")
        for o in outcomes {
            print("  \(o.policy.padding(toLength: 13, withPad: " ", startingAt: 0)) hosts needed \(o.hostsNeeded) (\(o.extraHosts) extra), overload \(o.overloadMinutes) min, \(o.overloadedJobs) jobs met an overload")
        }
    }

    func simulate(_ policy: String, traces: [[Double]], steps: Int, jobs: [Job]) -> Outcome {
        let n = traces.count
        var committed = [[Double]](repeating: [Double](repeating: 0, count: steps), count: n) // jobs' load per host and step
        var extras: [[Double]] = []
        var placedOn: [Int?] = [] // fleet host per job (nil: an extra host)
        var forecasts: [(at: Int, hi: [Double])?] = Array(repeating: nil, count: n)
        var next = 0
        for job in jobs {
            let end = min(job.start + job.steps, steps)
            var choice: Int?
            switch policy {
            case "round-robin":
                choice = next % n
                next += 1
            case "least-loaded":
                let load = (0..<n).map { traces[$0][job.start] + committed[$0][job.start] }
                if let best = load.indices.min(by: { load[$0] < load[$1] }), load[best] + job.demand <= 100 { choice = best }
            default:
                var best: (host: Int, spare: Double)?
                for h in 0..<n {
                    let hour = job.start / Self.stepsPerHour * Self.stepsPerHour
                    if forecasts[h]?.at != hour {
                        let history = Array(traces[h][max(0, hour - 3 * Self.period)..<hour])
                        forecasts[h] = (hour, Forecaster.forecast(history, horizon: 13 * Self.stepsPerHour, period: Self.period).points.map(\.hi80))
                    }
                    let hi = forecasts[h]!.hi
                    var peak = 0.0
                    for s in job.start..<end { peak = max(peak, hi[min(s - (forecasts[h]!.at), hi.count - 1)] + committed[h][s]) }
                    let spare = 100 - peak
                    if spare >= job.demand, best.map({ spare > $0.spare }) ?? true { best = (h, spare) }
                }
                choice = best?.host
            }
            if let h = choice {
                for s in job.start..<end { committed[h][s] += job.demand }
            } else {
                // An extra host: the first whose jobs leave room for this one over its whole duration.
                if let e = extras.indices.first(where: { e in (job.start..<end).allSatisfy { extras[e][$0] + job.demand <= 100 } }) {
                    for s in job.start..<end { extras[e][s] += job.demand }
                } else {
                    var load = [Double](repeating: 0, count: steps)
                    for s in job.start..<end { load[s] = job.demand }
                    extras.append(load)
                }
            }
            placedOn.append(choice)
        }
        var overload = 0
        var over = [[Bool]](repeating: [Bool](repeating: false, count: steps), count: n)
        for h in 0..<n {
            for s in 0..<steps where traces[h][s] + committed[h][s] > 100 {
                overload += 5
                over[h][s] = true
            }
        }
        let hit = zip(jobs, placedOn).filter { job, h in h.map { h in (job.start..<min(job.start + job.steps, steps)).contains { over[h][$0] } } ?? false }.count
        return Outcome(policy: policy, hostsNeeded: n + extras.count, extraHosts: extras.count, overloadMinutes: overload, overloadedJobs: hit)
    }
}
