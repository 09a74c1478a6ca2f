import CCurl

/// Facts about the libcurl walship is linked with.
public enum CurlLibrary {
    /// For example "libcurl/7.88.1 OpenSSL/3.0.15 zlib/1.2.13 ...".
    public static var version: String {
        guard let text = curl_version() else { return "unknown" }
        return String(cString: text)
    }
}
