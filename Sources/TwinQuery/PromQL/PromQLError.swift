/// What can go wrong with a PromQL query, in the classes the Prometheus HTTP API reports.
public enum PromQLError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The text is not valid PromQL; `position` is the 0-based character offset of the problem.
    case parse(position: Int, message: String)
    /// A request parameter is out of bounds (Prometheus' `bad_data`).
    case badData(String)
    /// Evaluation failed (Prometheus' `execution`).
    case execution(String)
    /// The query ran past its deadline (Prometheus' `timeout`).
    case timeout(String)

    /// Whether the query stopped at its sample budget or its deadline (with larger ones it may succeed).
    public var isOverBudget: Bool {
        switch self {
        case .timeout: return true
        case .execution(let m): return m == StoreSampleSource.tooMany
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .parse(_, let m): return m
        case .badData(let m), .execution(let m), .timeout(let m): return m
        }
    }
}
