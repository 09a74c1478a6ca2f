import Foundation
import WalshipCore

/// The shared credentials file (`~/.aws/credentials`, or `AWS_SHARED_CREDENTIALS_FILE`): an INI
/// file of `[profile]` sections with `aws_access_key_id`, `aws_secret_access_key` and optional
/// `aws_session_token`.
public struct SharedCredentialsFileProvider: CredentialsProvider {
    public let path: String
    public let profile: String
    public var sourceName: String { "shared credentials file '\(path)' profile '\(profile)'" }

    public init(path: String, profile: String) {
        self.path = path
        self.profile = profile
    }

    public func credentials() async throws -> AWSCredentials {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw WalshipError(.usage, "read shared credentials file '\(path)': cannot read the file")
        }
        return try Self.credentials(in: text, profile: profile, path: path)
    }

    /// Reads one profile's credentials from the file's text.
    static func credentials(in text: String, profile: String, path: String) throws -> AWSCredentials {
        let sections = parse(text)
        guard let values = sections[profile] else {
            throw WalshipError(.usage, "shared credentials file '\(path)' has no profile '\(profile)'")
        }
        guard let keyID = values["aws_access_key_id"], !keyID.isEmpty,
            let secret = values["aws_secret_access_key"], !secret.isEmpty
        else {
            throw WalshipError(
                .usage,
                "profile '\(profile)' in '\(path)' lacks aws_access_key_id or aws_secret_access_key")
        }
        let token = values["aws_session_token"].flatMap { $0.isEmpty ? nil : $0 }
        return AWSCredentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: token)
    }

    /// Whether the file has the profile (used to decide whether this source applies).
    static func hasProfile(_ profile: String, path: String) -> Bool {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return false }
        return parse(text)[profile] != nil
    }

    /// INI sections to key/value maps; keys lower-cased, `#`/`;` comments ignored.
    static func parse(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                var name = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                if name.hasPrefix("profile ") { name = String(name.dropFirst(8)).trimmingCharacters(in: .whitespaces) }
                current = name
                sections[name, default: [:]] = sections[name] ?? [:]
                continue
            }
            guard let current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            sections[current]?[key] = value
        }
        return sections
    }
}
