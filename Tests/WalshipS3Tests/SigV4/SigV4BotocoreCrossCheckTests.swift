import Foundation
import Testing
import WalshipTesting

@testable import WalshipS3

/// Compares our S3 signatures with botocore's `S3SigV4Auth`, an independent implementation.
/// The loopback S3 servers do not check `x-amz-content-sha256`, so this comparison (with the
/// AWS vectors) is what catches payload-hash and encoding bugs. Without python3 and botocore the
/// test fails with the setup command: it is never skipped.
@Suite("SigV4 against botocore")
struct SigV4BotocoreCrossCheckTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var method: String
        var key: String?
        var query: [(name: String, value: String)] = []
        var extraHeaders: [(name: String, value: String)] = []
        var body: [UInt8] = []
        var sessionToken: String?

        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "PUT with a small body", method: "PUT", key: "path/to/obj.segment", body: Array("hello world".utf8)),
        Case(
            name: "PUT with 100 KB of random bytes and Content-MD5", method: "PUT", key: "gen/0001/segments/a.segment",
            extraHeaders: [("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")],
            body: (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }),
        Case(
            name: "ListObjectsV2 with a slash in the prefix and an encoded token", method: "GET", key: nil,
            query: [
                ("list-type", "2"), ("prefix", "generations/abc/"), ("continuation-token", "a+b=="),
                ("max-keys", "1000"),
            ]),
        Case(name: "GET of a key with spaces and non-ASCII characters", method: "GET", key: "dir/my file ü ሴ.db"),
        Case(
            name: "PUT with a session token", method: "PUT", key: "x/y", body: Array("token".utf8),
            sessionToken: "FwoGZXIvYXdzEJr//////////wEaDEXAMPLETOKEN+/="),
        Case(name: "DELETE with a query", method: "DELETE", key: "k", query: [("uploadId", "abc/def+ghi")]),
    ]

    @Test("our Authorization and x-amz-content-sha256 equal botocore's", arguments: cases)
    func matchesBotocore(testCase: Case) throws {
        let configuration = S3Configuration(bucket: "bucket", endpoint: "http://127.0.0.1:9000", region: "us-east-1")
        let addressing = try S3Addressing(configuration: configuration)
        let credentials = AWSCredentials(
            accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            sessionToken: testCase.sessionToken)
        let date = Date(timeIntervalSince1970: 1_764_000_000)
        let payloadHash = SigV4Signer.sha256Hex(testCase.body)
        let headers = testCase.extraHeaders + [("host", addressing.host)]
        let signer = SigV4Signer(credentials: credentials, region: "us-east-1")
        let added = signer.sign(
            SigV4Request(
                method: testCase.method, path: addressing.path(key: testCase.key), query: testCase.query,
                headers: headers),
            payloadHash: payloadHash, date: date)
        let ours = Dictionary(added.map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { $1 })

        let spec: [String: Any] = [
            "method": testCase.method, "url": addressing.url(key: testCase.key, query: testCase.query),
            "headers": Dictionary(testCase.extraHeaders.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 }),
            "body_hex": testCase.body.map { String(format: "%02x", $0) }.joined(),
            "access_key": credentials.accessKeyID,
            "secret_key": credentials.secretAccessKey, "session_token": testCase.sessionToken as Any,
            "region": "us-east-1", "timestamp": SigV4Signer.timestamp(date),
        ]
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Scripts/botocore_sign.py").path
        let input = String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self)
        let python = try #require(CommandRunner.which("python3"), "python3 is missing: run scripts/setup")
        let output = try CommandRunner.run(python, [script], stdin: input)
        try #require(output.status == 0, "botocore signer failed (run 'pip install botocore'): \(output.stderr)")
        let theirs = try #require(
            try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: String])
        #expect(ours["x-amz-content-sha256"] == theirs["x-amz-content-sha256"])
        #expect(ours["x-amz-date"] == theirs["x-amz-date"])
        #expect(ours["x-amz-security-token"] == theirs["x-amz-security-token"])
        #expect(ours["authorization"] == theirs["authorization"])
    }
}
