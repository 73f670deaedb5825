import Foundation
import HTTPTypes
import TwinCore
import TwinQuery
import TwinSecurity

/// An error answered in the Prometheus API's envelope: `{"status":"error","errorType":...,"error":...}`.
struct APIError: Error {
    var type: String
    var message: String
    var status: HTTPResponse.Status
    var headers: HTTPFields = [:]

    static func badData(_ m: String) -> APIError { APIError(type: "bad_data", message: m, status: .badRequest) }
    static func notFound(_ m: String) -> APIError { APIError(type: "not_found", message: m, status: .notFound) }
    static func execution(_ m: String) -> APIError { APIError(type: "execution", message: m, status: .unprocessableContent) }
    static func timeout(_ m: String) -> APIError { APIError(type: "timeout", message: m, status: .serviceUnavailable) }
    static func unavailable(_ m: String) -> APIError { APIError(type: "unavailable", message: m, status: .serviceUnavailable) }
    static func `internal`(_ m: String) -> APIError { APIError(type: "internal", message: m, status: .internalServerError) }

    /// Maps an error from the layers below onto the API's classes.
    static func from(_ error: any Error, parameter: String? = nil) -> APIError {
        switch error {
        case let e as APIError: return e
        case let e as PromQLError:
            switch e {
            case .parse(_, let m): return .badData(parameter.map { "invalid parameter \"\($0)\": \(m)" } ?? m)
            case .badData(let m): return .badData(m)
            case .execution(let m): return .execution(m)
            case .timeout(let m): return .timeout(m)
            }
        case let e as SyncConflict: return APIError(type: "conflict", message: e.description, status: .conflict)
        case let e as TwinError:
            switch e {
            case .badInput(let m): return .badData(m)
            case .corrupt: return .internal("\(e)")
            case .unavailable(let m): return .unavailable(m)
            }
        default: return .internal("\(error)")
        }
    }

    var json: String {
        var j = JSONText()
        j.raw("{\"status\":\"error\",\"errorType\":")
        j.string(type)
        j.raw(",\"error\":")
        j.string(message)
        j.raw("}")
        return j.out
    }
}

/// Request parameters from the query string and, for form POSTs, the body; a name may repeat
/// (`match[]`).
struct Params {
    private(set) var pairs: [(String, String)] = []
    /// The request's `Accept` header (content negotiation of `/metrics`).
    var accept = ""
    /// Who asked, and the key their limits are counted under (token id, else source address).
    var identity = Identity.nobody
    var caller = ""
    var isPost = false

    init(query: String?) { if let query { add(form: query) } }

    /// Adds `application/x-www-form-urlencoded` pairs.
    mutating func add(form: String) {
        for part in form.split(separator: "&", omittingEmptySubsequences: true) {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            pairs.append((Self.decode(kv[0]), kv.count > 1 ? Self.decode(kv[1]) : ""))
        }
    }

    static func decode(_ s: Substring) -> String {
        let plus = s.replacingOccurrences(of: "+", with: " ")
        return plus.removingPercentEncoding ?? plus
    }

    subscript(name: String) -> String? { pairs.last { $0.0 == name }?.1 }
    func all(_ name: String) -> [String] { pairs.filter { $0.0 == name }.map(\.1) }

    /// A time parameter: Unix seconds (fractions allowed) or RFC 3339; `default` when absent.
    func time(_ name: String, default def: Int64) throws -> Int64 {
        guard let text = self[name], !text.isEmpty else { return def }
        if let secs = Double(text), secs.isFinite {
            let ms = (secs * 1000).rounded()
            guard abs(ms) <= Double(TwinTime.maxTime) else { throw APIError.badData("invalid parameter \"\(name)\": \"\(text)\" is out of range (at most 10,000 years from 1970)") }
            return Int64(ms)
        }
        if let t = TwinTime.parseRFC3339(text) { return t }
        throw APIError.badData("invalid parameter \"\(name)\": cannot parse \"\(text)\" to a valid timestamp")
    }

    /// A duration parameter: seconds (fractions allowed) or a Prometheus duration such as `15s`, `1m30s`.
    func duration(_ name: String) throws -> Int64? {
        guard let text = self[name], !text.isEmpty else { return nil }
        if let secs = Double(text) {
            let ms = (secs * 1000).rounded()
            guard ms.isFinite, abs(ms) <= Double(TwinTime.maxDuration) else { throw APIError.badData("invalid parameter \"\(name)\": \"\(text)\" is out of range (at most 1,000 years)") }
            return Int64(ms)
        }
        do { return try TwinTime.parseDuration(text) } catch {
            throw APIError.badData("invalid parameter \"\(name)\": cannot parse \"\(text)\" to a valid duration: \(error)")
        }
    }
}
