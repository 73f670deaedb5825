/// Errors HostTwin reports to a person. Each says what failed and, where it helps, what to do.
public enum TwinError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Input from a user, a file or a request could not be understood.
    case badInput(String)
    /// Stored data failed a consistency check; `what` names the file or record.
    case corrupt(what: String, detail: String)
    /// A resource (data directory, file) could not be used.
    case unavailable(String)

    public var description: String {
        switch self {
        case .badInput(let m): return m
        case .corrupt(let what, let detail): return "corrupt data in \(what): \(detail)"
        case .unavailable(let m): return m
        }
    }
}
