import Foundation
import Hummingbird
import TwinCore
import TwinSecurity
import TwinStorage

/// The admin API (`admin` tokens only): tokens and the audit log. Every change is itself audited.
extension TwinAPI {
    /// `GET /api/v1/admin/tokens`: every token (never a secret); `POST` with `role`, `host`, `name`,
    /// `expires` (a duration such as `90d`): a new token, shown in this answer only.
    func tokens(_ p: Params) throws -> Response {
        guard let authority = access.tokens else { throw APIError.unavailable("this server has no token store") }
        guard p.isPost else {
            let list = try store.tokens().map(TokenJSON.init)
            return try success(list)
        }
        guard !store.isReadOnly else {
            throw APIError.unavailable("this server opened the store read-only (`hosttwin serve`); create tokens with `hosttwin token create` or through `hosttwin run`")
        }
        guard let roleText = p["role"], let role = Role(rawValue: roleText) else {
            throw APIError.badData("invalid parameter \"role\": one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let expires = try p.duration("expires").map { TwinTime.nowMillis() + $0 }
        let created: (token: String, record: TokenRecord)
        do { created = try authority.create(role: role, host: p["host"], name: p["name"] ?? "", expires: expires, datacenter: p["datacenter"], policy: p["policy"]) } catch let e as TwinError {
            throw APIError.from(e)
        }
        audit?.append(.init(kind: "admin", action: "token.create", role: p.identity.role?.rawValue, token: p.identity.tokenID, source: p.caller,
                            status: 200, detail: "id=\(created.record.id) role=\(role.rawValue)\(created.record.host.map { " host=\($0)" } ?? "")\(created.record.datacenter.map { " datacenter=\($0)" } ?? "")"))
        struct Created: Encodable { var token: String; var info: TokenJSON }
        return try success(Created(token: created.token, info: TokenJSON(created.record)))
    }

    /// `POST /api/v1/admin/tokens/revoke` with `id`.
    func revokeToken(_ p: Params) throws -> Response {
        guard let id = p["id"], !id.isEmpty else { throw APIError.badData("missing parameter \"id\"") }
        guard !store.isReadOnly else {
            throw APIError.unavailable("this server opened the store read-only (`hosttwin serve`); revoke with `hosttwin token revoke` or through `hosttwin run`")
        }
        guard try store.revokeToken(id: id, at: TwinTime.nowMillis()) else { throw APIError.notFound("no active token \(id)") }
        audit?.append(.init(kind: "admin", action: "token.revoke", role: p.identity.role?.rawValue, token: p.identity.tokenID, source: p.caller, status: 200, detail: "id=\(id)"))
        return try success(["revoked": id])
    }

    /// `GET /api/v1/admin/audit?since=T`: the audit records since T (default the last hour).
    func auditRecords(_ p: Params) throws -> Response {
        guard let audit else { throw APIError.unavailable("this server keeps no audit log") }
        let since = try time(p, "since", default: "-1h")
        let records = try audit.records(since: since)
        return try success(records)
    }

    /// `GET /api/v1/admin/audit/verify`: the result of checking the chain and its anchors.
    func auditVerify(_ p: Params) throws -> Response {
        guard let audit else { throw APIError.unavailable("this server keeps no audit log") }
        audit.anchorNow()
        let verdict = try audit.verify()
        return try success(verdict)
    }
}

/// A token as listed: everything but its secret.
public struct TokenJSON: Encodable {
    public var id: String
    public var role: String
    public var host: String?
    /// The datacenter a reader token is confined to.
    public var datacenter: String?
    public var name: String
    public var created: String
    public var expires: String?
    public var revoked: String?

    public init(_ r: TokenRecord) {
        (id, role, host, name, datacenter) = (r.id, r.role, r.host, r.name, r.datacenter)
        created = TwinTime.rfc3339(r.created)
        expires = r.expires.map(TwinTime.rfc3339)
        revoked = r.revoked.map(TwinTime.rfc3339)
    }
}
