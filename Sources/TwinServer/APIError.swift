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
    /// The query runs under ``TwinAPI/smallQueryBudget`` (its first attempt, on the request's task).
    var smallAttempt = false

    init(query: String?) { if let query { add(form: query) } }

    /// Adds `application/x-www-form-urlencoded` pairs.
    mutating func add(form: String) {
        for part in form.split(separator: "&", omittingEmptySubsequences: true) {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            pairs.append((Self.decode(kv[0]), kv.count > 1 ? Self.decode(kv[1]) : ""))
        }
    }

    /// Form decoding: `+` is a space, `%XY` a byte. A malformed escape or bytes that are not UTF-8 leave
    /// the escapes as written (only `+` decoded). Byte-level: this runs for every parameter of every request.
    static func decode(_ s: Substring) -> String {
        let utf8 = s.utf8
        guard utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else { return String(s) }
        func hex(_ b: UInt8) -> UInt8? {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        let input = Array(utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(input.count)
        var i = 0, escapesValid = true
        while i < input.count {
            let b = input[i]
            if b == UInt8(ascii: "%") {
                guard i + 2 < input.count, let hi = hex(input[i + 1]), let lo = hex(input[i + 2]) else { escapesValid = false; break }
                bytes.append(hi << 4 | lo)
                i += 3
            } else {
                bytes.append(b == UInt8(ascii: "+") ? UInt8(ascii: " ") : b)
                i += 1
            }
        }
        if escapesValid, let decoded = String(validating: bytes, as: UTF8.self) { return decoded }
        return String(decoding: input.map { $0 == UInt8(ascii: "+") ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
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
