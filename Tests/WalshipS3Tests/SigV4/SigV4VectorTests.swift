import Foundation
import Testing

@testable import WalshipS3

/// One case of the AWS SigV4 test suite, read from `Vectors/sigv4/<name>/`.
struct SigV4Vector: CustomTestStringConvertible, Sendable {
    struct Context: Decodable, Sendable {
        struct Credentials: Decodable, Sendable {
            var access_key_id: String
            var secret_access_key: String
            var token: String?
        }

        var credentials: Credentials
        var expiration_in_seconds: Int
        var normalize: Bool
        var region: String
        var service: String
        var sign_body: Bool
        var timestamp: String
        var omit_session_token: Bool?
    }

    let name: String
    let directory: URL
    let context: Context
    let request: SigV4Request
    let body: [UInt8]

    var testDescription: String { name }

    func expected(_ file: String) throws -> String {
        try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
    }

    var date: Date { ISO8601DateFormatter().date(from: context.timestamp)! }

    var signer: SigV4Signer {
        SigV4Signer(
            credentials: AWSCredentials(
                accessKeyID: context.credentials.access_key_id, secretAccessKey: context.credentials.secret_access_key,
                sessionToken: context.credentials.token),
            region: context.region, service: context.service, normalizePath: context.normalize,
            signedBodyHeader: context.sign_body, signSessionToken: !(context.omit_session_token ?? false))
    }

    var payloadHash: String { SigV4Signer.sha256Hex(body) }

    static func all() throws -> [SigV4Vector] {
        guard let root = Bundle.module.url(forResource: "Vectors", withExtension: nil)?.appendingPathComponent("sigv4")
        else { throw VectorError.missing("Vectors/sigv4 resource") }
        let names = try FileManager.default.contentsOfDirectory(atPath: root.path).filter {
            FileManager.default.fileExists(atPath: root.appendingPathComponent("\($0)/request.txt").path)
        }
        return try names.sorted().map { try load(name: $0, directory: root.appendingPathComponent($0)) }
    }

    enum VectorError: Error { case missing(String), malformed(String) }

    /// Parses request.txt: a request line, header lines (a line starting with whitespace folds
    /// into the previous header), a blank line, and the body.
    static func load(name: String, directory: URL) throws -> SigV4Vector {
        let context = try JSONDecoder().decode(
            Context.self, from: Data(contentsOf: directory.appendingPathComponent("context.json")))
        let raw = try [UInt8](Data(contentsOf: directory.appendingPathComponent("request.txt")))
        var lines: [String] = []
        var body: [UInt8] = []
        var index = 0
        var current: [UInt8] = []
        while index < raw.count {
            if raw[index] == 0x0A {
                if current.last == 0x0D { current.removeLast() }
                if current.isEmpty && !lines.isEmpty {
                    body = Array(raw[(index + 1)...])
                    break
                }
                lines.append(String(decoding: current, as: UTF8.self))
                current = []
            } else {
                current.append(raw[index])
            }
            index += 1
        }
        if !current.isEmpty { lines.append(String(decoding: current, as: UTF8.self)) }
        guard let requestLine = lines.first else { throw VectorError.malformed(name) }
        var parts = requestLine.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 3 else { throw VectorError.malformed(name) }
        let method = parts.removeFirst()
        parts.removeLast()  // HTTP/1.1
        let target = parts.joined(separator: " ")
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            if let first = line.first, first == " " || first == "\t", !headers.isEmpty {
                headers[headers.count - 1].value += "\n" + line
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), String(line[line.index(after: colon)...])))
        }
        let (path, query) = splitTarget(target)
        return SigV4Vector(
            name: name, directory: directory, context: context,
            request: SigV4Request(method: method, path: path, query: query, headers: headers), body: body)
    }

    /// Splits "/path?a=b&c" into the decoded path and query pairs.
    static func splitTarget(_ target: String) -> (String, [(name: String, value: String)]) {
        guard let mark = target.firstIndex(of: "?") else { return (decode(target), []) }
        let path = decode(String(target[..<mark]))
        let queryText = target[target.index(after: mark)...]
        let pairs = queryText.split(separator: "&").map { item -> (name: String, value: String) in
            if let equals = item.firstIndex(of: "=") {
                return (decode(String(item[..<equals])), decode(String(item[item.index(after: equals)...])))
            }
            return (decode(String(item)), "")
        }
        return (path, pairs)
    }

    static func decode(_ text: String) -> String { text.removingPercentEncoding ?? text }
}

@Suite("SigV4 test suite")
struct SigV4VectorTests {
    static let vectors = (try? SigV4Vector.all()) ?? []

    /// The folder holds 38 case directories (its README says 39); every one must load.
    @Test("every case directory of the suite loads")
    func suiteIsComplete() throws {
        let root = try #require(Bundle.module.url(forResource: "Vectors", withExtension: nil)).appendingPathComponent(
            "sigv4")
        var isDirectory: ObjCBool = false
        let directories = try FileManager.default.contentsOfDirectory(atPath: root.path).filter {
            FileManager.default.fileExists(atPath: root.appendingPathComponent($0).path, isDirectory: &isDirectory)
                && isDirectory.boolValue
        }
        #expect(directories.count >= 38)
        #expect(Self.vectors.count == directories.count)
    }

    @Test(
        "header signing matches the canonical request, string to sign, signature and Authorization", arguments: vectors)
    func headerSigning(vector: SigV4Vector) throws {
        let signer = vector.signer
        let added = signer.sign(vector.request, payloadHash: vector.payloadHash, date: vector.date)
        var signedRequest = vector.request
        signedRequest.headers += added.filter {
            $0.name != "Authorization" && (signer.signSessionToken || $0.name != "x-amz-security-token")
        }
        let canonical = signer.canonicalRequest(signedRequest, payloadHash: vector.payloadHash).text
        #expect(canonical == (try vector.expected("header-canonical-request.txt")))
        let stringToSign = signer.stringToSign(canonicalRequest: canonical, date: vector.date)
        #expect(stringToSign == (try vector.expected("header-string-to-sign.txt")))
        let signature = signer.signature(stringToSign: stringToSign, date: vector.date)
        #expect(
            signature == (try vector.expected("header-signature.txt")).trimmingCharacters(in: .whitespacesAndNewlines))
        let authorization = added.first { $0.name == "Authorization" }?.value
        let expectedAuthorization = try vector.expected("header-signed-request.txt")
            .split(whereSeparator: \.isNewline)
            .first { $0.hasPrefix("Authorization:") }
            .map { String($0.dropFirst("Authorization:".count)) }
        #expect(authorization == expectedAuthorization)
    }

    @Test("query signing matches the canonical request, string to sign and signature", arguments: vectors)
    func querySigning(vector: SigV4Vector) throws {
        var signer = vector.signer
        signer.signedBodyHeader = false
        let query = signer.presignedQuery(
            vector.request, payloadHash: vector.payloadHash, date: vector.date,
            expires: vector.context.expiration_in_seconds)
        let signatureIndex = try #require(query.firstIndex { $0.name == "X-Amz-Signature" })
        var unsigned = vector.request
        unsigned.query = Array(query[..<signatureIndex])
        let canonical = signer.canonicalRequest(unsigned, payloadHash: vector.payloadHash).text
        #expect(canonical == (try vector.expected("query-canonical-request.txt")))
        let stringToSign = signer.stringToSign(canonicalRequest: canonical, date: vector.date)
        #expect(stringToSign == (try vector.expected("query-string-to-sign.txt")))
        #expect(
            query[signatureIndex].value
                == (try vector.expected("query-signature.txt")).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test("S3 keys are never normalized: dot segments and double slashes are signed literally")
    func s3PathsAreLiteral() {
        let signer = SigV4Signer(
            credentials: AWSCredentials(accessKeyID: "AK", secretAccessKey: "SK"), region: "us-east-1")
        #expect(signer.canonicalPath("/bucket/a//b/../c d") == "/bucket/a//b/../c%20d")
    }

    @Test("printing credentials never shows the secret or the token")
    func credentialsHideSecrets() {
        let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "topsecret", sessionToken: "tok")
        for text in ["\(credentials)", String(reflecting: credentials)] {
            #expect(text.contains("AKIDEXAMPLE"))
            #expect(!text.contains("topsecret"))
            #expect(!text.contains("tok)"))
        }
    }
}
