import Testing

@testable import WalshipS3

@Suite("S3 messages")
struct S3MessagesTests {
    @Test(
        "GetBucketVersioning: Enabled and Suspended keep old versions, no status means never versioned, anything else is unknown",
        arguments: [
            (
                "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>Enabled</Status></VersioningConfiguration>",
                true as Bool?
            ),
            ("<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>", true),
            ("<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>", false),
            ("<Error><Code>NotImplemented</Code></Error>", nil),
            ("not xml", nil),
        ])
    func versioning(body: String, keepsOldVersions: Bool?) {
        #expect(S3Messages.parseVersioning(Array(body.utf8)) == keepsOldVersions)
    }

    @Test("endpoints are compared in one spelling: case, default ports and trailing slashes do not matter")
    func normalizedEndpoints() {
        let same = ["http://127.0.0.1:9000", "HTTP://127.0.0.1:9000/", "http://127.0.0.1:9000//"]
        #expect(Set(same.map(S3Configuration.normalizedEndpoint)).count == 1)
        #expect(S3Configuration.normalizedEndpoint("https://S3.Example.com:443") == "https://s3.example.com")
        #expect(S3Configuration.normalizedEndpoint("http://minio:80/") == "http://minio")
        #expect(
            S3Configuration.normalizedEndpoint("http://minio:9000")
                != S3Configuration.normalizedEndpoint("http://minio:9001"))
        #expect(S3Configuration.normalizedEndpoint(nil) == "AWS")
    }
}
