import Foundation
import WalshipCore

/// Picks the credentials source the way AWS SDKs do, from the first one that is configured:
///
/// 1. credentials given in flags or the configuration file;
/// 2. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
/// 3. `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (Kubernetes service accounts);
/// 4. the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`), profile
///    from the configuration, `AWS_PROFILE`, or `default`;
/// 5. the container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI` /
///    `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`);
/// 6. EC2 instance metadata (IMDSv2), unless `AWS_EC2_METADATA_DISABLED=true`.
///
/// A source that is named but unusable (only one of the two key variables, a profile that does
/// not exist) is an error, never a silent fall-through to the next source. The environment is a
/// parameter: only the executable reads the process environment.
public enum CredentialsResolver {
    public static func provider(
        explicit: AWSCredentials?, profile: String?, region: String, environment: [String: String],
        homeDirectory: String?, transport: any HTTPTransport
    ) throws -> any CredentialsProvider {
        if let explicit {
            return StaticCredentialsProvider(explicit, sourceName: "configuration")
        }
        if let fromEnvironment = try environmentKeys(environment) { return fromEnvironment }
        if let webIdentity = try webIdentity(environment, region: region, transport: transport) { return webIdentity }
        let credentialsFile =
            environment["AWS_SHARED_CREDENTIALS_FILE"] ?? homeDirectory.map { "\($0)/.aws/credentials" }
        if let shared = try sharedFile(credentialsFile, profile: profile, environment: environment) { return shared }
        if let container = container(environment, transport: transport) { return container }
        return try instanceMetadata(environment, credentialsFile: credentialsFile, transport: transport)
    }

    private static func nonEmpty(_ environment: [String: String], _ name: String) -> String? {
        environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`); one without the
    /// other is an error.
    private static func environmentKeys(_ environment: [String: String]) throws -> (any CredentialsProvider)? {
        switch (nonEmpty(environment, "AWS_ACCESS_KEY_ID"), nonEmpty(environment, "AWS_SECRET_ACCESS_KEY")) {
        case (let keyID?, let secret?):
            return StaticCredentialsProvider(
                AWSCredentials(
                    accessKeyID: keyID, secretAccessKey: secret,
                    sessionToken: nonEmpty(environment, "AWS_SESSION_TOKEN")),
                sourceName: "environment")
        case (.some, nil):
            throw WalshipError(.usage, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
        case (nil, .some):
            throw WalshipError(.usage, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not")
        case (nil, nil):
            return nil
        }
    }

    /// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (Kubernetes service accounts).
    private static func webIdentity(
        _ environment: [String: String], region: String, transport: any HTTPTransport
    ) throws -> (any CredentialsProvider)? {
        guard let tokenFile = nonEmpty(environment, "AWS_WEB_IDENTITY_TOKEN_FILE") else { return nil }
        guard let roleARN = nonEmpty(environment, "AWS_ROLE_ARN") else {
            throw WalshipError(.usage, "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not")
        }
        let sts = environment["AWS_ENDPOINT_URL_STS"] ?? "https://sts.\(region).amazonaws.com"
        let session = environment["AWS_ROLE_SESSION_NAME"] ?? "walship-\(getpid())"
        return RefreshingCredentialsProvider(
            WebIdentityCredentialsProvider(
                tokenFile: tokenFile, roleARN: roleARN, sessionName: session, stsEndpoint: sts, transport: transport))
    }

    /// The shared credentials file's profile (from the configuration, `AWS_PROFILE`, or
    /// `default`); a profile named but missing is an error.
    private static func sharedFile(
        _ credentialsFile: String?, profile: String?, environment: [String: String]
    ) throws -> (any CredentialsProvider)? {
        let namedProfile = profile ?? nonEmpty(environment, "AWS_PROFILE")
        guard let credentialsFile else {
            if let namedProfile {
                throw WalshipError(
                    .usage, "profile '\(namedProfile)' was requested but there is no shared credentials file")
            }
            return nil
        }
        let chosen = namedProfile ?? "default"
        if SharedCredentialsFileProvider.hasProfile(chosen, path: credentialsFile) {
            return SharedCredentialsFileProvider(path: credentialsFile, profile: chosen)
        }
        if namedProfile != nil {
            throw WalshipError(.usage, "profile '\(chosen)' is not in the shared credentials file '\(credentialsFile)'")
        }
        return nil
    }

    /// The container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`, or the
    /// relative URI on the ECS address).
    private static func container(
        _ environment: [String: String], transport: any HTTPTransport
    ) -> (any CredentialsProvider)? {
        let uri =
            nonEmpty(environment, "AWS_CONTAINER_CREDENTIALS_FULL_URI")
            ?? nonEmpty(environment, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").map { "http://169.254.170.2\($0)" }
        guard let uri else { return nil }
        return RefreshingCredentialsProvider(
            ContainerCredentialsProvider(
                uri: uri, authorizationToken: environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"],
                authorizationTokenFile: environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"], transport: transport))
    }

    /// EC2 instance metadata (IMDSv2), the last source: every source before it was not
    /// configured, and its error says so for each, so that a user with no credentials anywhere
    /// learns where walship looked.
    private static func instanceMetadata(
        _ environment: [String: String], credentialsFile: String?, transport: any HTTPTransport
    ) throws -> any CredentialsProvider {
        let skipped = [
            "configuration file: no credentials given",
            "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set",
            "web identity: AWS_WEB_IDENTITY_TOKEN_FILE is not set",
            credentialsFile.map { file in
                FileSystem.exists(file)
                    ? "shared credentials file '\(file)': no profile 'default'"
                    : "shared credentials file '\(file)': not found"
            } ?? "shared credentials file: no home directory",
            "container credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_CREDENTIALS_RELATIVE_URI are not set",
        ]
        if environment["AWS_EC2_METADATA_DISABLED"]?.lowercased() == "true" {
            throw WalshipError(
                .usage,
                "no AWS credentials found; tried: \((skipped + ["EC2 instance metadata: disabled (AWS_EC2_METADATA_DISABLED=true)"]).joined(separator: "; "))"
            )
        }
        let endpoint = environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"] ?? "http://169.254.169.254"
        return RefreshingCredentialsProvider(
            LastResortCredentialsProvider(
                InstanceMetadataCredentialsProvider(endpoint: endpoint, transport: transport), skipped: skipped))
    }
}

/// The instance metadata as the last source tried: when it fails too (the usual case off EC2),
/// its error names every source walship looked at and why each gave nothing, keeping the
/// underlying failure's class and whether it is worth retrying.
struct LastResortCredentialsProvider: CredentialsProvider {
    let base: any CredentialsProvider
    let skipped: [String]

    init(_ base: any CredentialsProvider, skipped: [String]) {
        self.base = base
        self.skipped = skipped
    }

    var sourceName: String { base.sourceName }

    func credentials() async throws -> AWSCredentials {
        do {
            return try await base.credentials()
        } catch {
            let failure = error as? WalshipError
            var result = WalshipError(
                failure?.code ?? .accessDenied,
                "no AWS credentials found; tried: \(skipped.joined(separator: "; ")); \(sourceName): \(failure?.message ?? "\(error)") (off EC2, set AWS_EC2_METADATA_DISABLED=true to skip it)",
                cause: error)
            result.isTransient = failure?.isTransient ?? false
            throw result
        }
    }
}
