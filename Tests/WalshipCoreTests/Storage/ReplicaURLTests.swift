import Foundation
import Testing

@testable import WalshipCore

@Suite("Replica URLs")
struct ReplicaURLTests {
    /// How walship 0.1 resolved an S3 URL (URLComponents: the host, and the decoded path's
    /// non-empty segments): URLs that parsed then must resolve to the same bucket and prefix now,
    /// or an upgraded agent would move its replica.
    static func resolvedByVersionOne(_ text: String) -> (bucket: String, prefix: String)? {
        guard var components = URLComponents(string: text), let host = components.host else { return nil }
        components.query = nil
        return (host, components.path.split(separator: "/").joined(separator: "/"))
    }

    @Test(
        "URLs that walship 0.1 accepted resolve to the same bucket and prefix",
        arguments: [
            "s3://backups", "s3://backups/", "s3://backups/app", "s3://backups/prod/app/", "s3://backups//prod//app",
            "s3://my.bucket-1/a%20b/c", "s3://b/%C3%A9t%C3%A9", "s3://b/app?region=eu-west-1",
            "s3://b/x?endpoint=http://127.0.0.1:9000&path-style=true", "s3://b/with space",
        ])
    func sameAsVersionOne(text: String) throws {
        let parsed = try ReplicaURL.parse(text)
        let old = Self.resolvedByVersionOne(text.replacingOccurrences(of: " ", with: "%20"))
        #expect(parsed.bucket == old?.bucket)
        #expect(parsed.prefix == old?.prefix)
    }

    @Test("a file URL's path is kept as written (percent-escapes decoded), as its replica's location was")
    func fileURLs() throws {
        #expect(try ReplicaURL.parse("file:///var/backups/app").bucket == "/var/backups/app")
        #expect(try ReplicaURL.parse("file:///var/backups/app/").bucket == "/var/backups/app/")
        #expect(try ReplicaURL.parse("file:///srv/a%20b").bucket == "/srv/a b")
        #expect(try ReplicaURL.parse("file:///srv/./x").bucket == "/srv/./x")
    }

    @Test("query parameters of S3 URLs are read")
    func queryParameters() throws {
        let url = try ReplicaURL.parse("s3://b/p?endpoint=https%3A%2F%2Fs3.example.com&region=eu-1&path-style=false")
        #expect(url.endpoint == "https://s3.example.com")
        #expect(url.region == "eu-1")
        #expect(url.pathStyle == false)
    }

    @Test(
        "what cannot round-trip is refused with the reason (exit 2)",
        arguments: [
            ("s3://b/h/app#one", "fragment"), ("s3://b/h/./app", "segments"), ("s3://b/h/../app", "segments"),
            ("s3://b/h%2F..%2Fx", "decodes"), ("s3://b/a\\b", "backslash"), ("s3://b/a%zz", "percent-escape"),
            ("s3://b/a%0a", "control"), ("s3://user@b/a", "bucket name"), ("s3://b:9000/a", "bucket name"),
            ("s3:///a", "missing"), ("s3://b/a?color=red", "unknown parameter"),
            ("s3://b/a?path-style=yes", "true or false"),
            ("file://relative/dir", "three slashes"), ("file:///tmp/x?endpoint=y", "no query"), ("http://b/a", "s3://"),
            ("file:///tmp/x#y", "fragment"),
        ])
    func refused(text: String, reason: String) {
        do {
            _ = try ReplicaURL.parse(text)
            Issue.record("'\(text)' was accepted")
        } catch let error as WalshipError {
            #expect(error.code == .usage)
            #expect(error.message.contains(reason), "\(error.message)")
        } catch {
            Issue.record("\(error)")
        }
    }
}
