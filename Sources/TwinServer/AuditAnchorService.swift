import ServiceLifecycle
import TwinSecurity

/// Anchors the audit log's head every minute while the server runs, and once more when it stops.
public struct AuditAnchorService: Service {
    let audit: AuditLog

    public init(audit: AuditLog) { self.audit = audit }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: .milliseconds(AuditLog.anchorInterval))
                audit.anchorNow()
            }
        }
        audit.anchorNow()
    }
}
