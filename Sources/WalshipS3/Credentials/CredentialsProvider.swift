import Foundation
import WalshipCore

/// A source of AWS credentials. Providers that fetch temporary credentials (web identity,
/// container endpoint, instance metadata) are wrapped in `RefreshingCredentialsProvider`, which
/// caches them and fetches new ones before they expire.
public protocol CredentialsProvider: Sendable {
    /// Names the source in logs and errors ("environment", "shared credentials file", ...).
    var sourceName: String { get }
    func credentials() async throws -> AWSCredentials
}

/// Credentials given directly (flags, configuration file, environment variables).
public struct StaticCredentialsProvider: CredentialsProvider {
    public let sourceName: String
    let value: AWSCredentials

    public init(_ credentials: AWSCredentials, sourceName: String) {
        self.value = credentials
        self.sourceName = sourceName
    }

    public func credentials() async throws -> AWSCredentials { value }
}

/// Caches the credentials of a provider whose credentials expire and fetches new ones
/// `refreshMargin` before the expiration, so no request is signed with credentials about to
/// lapse. Concurrent callers share one fetch.
public actor RefreshingCredentialsProvider: CredentialsProvider {
    public nonisolated let sourceName: String
    let base: any CredentialsProvider
    let refreshMargin: TimeInterval
    let now: @Sendable () -> Date
    private var cached: AWSCredentials?
    private var inFlight: Task<AWSCredentials, any Error>?

    public init(
        _ base: any CredentialsProvider, refreshMargin: TimeInterval = 300,
        now: @escaping @Sendable () -> Date = Date.init
    ) {
        self.base = base
        self.sourceName = base.sourceName
        self.refreshMargin = refreshMargin
        self.now = now
    }

    public func credentials() async throws -> AWSCredentials {
        if let cached, !needsRefresh(cached) { return cached }
        if let inFlight { return try await inFlight.value }
        let task = Task { try await base.credentials() }
        inFlight = task
        defer { inFlight = nil }
        do {
            let fresh = try await task.value
            cached = fresh
            return fresh
        } catch {
            // Keep using credentials that have not expired yet if a refresh fails.
            if let cached, let expiration = cached.expiration, expiration > now() { return cached }
            throw error
        }
    }

    func needsRefresh(_ credentials: AWSCredentials) -> Bool {
        guard let expiration = credentials.expiration else { return false }
        return expiration.timeIntervalSince(now()) < refreshMargin
    }
}
