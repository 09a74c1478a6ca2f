import Foundation
import Logging
import WalshipCore

/// Writes log records to standard error, one per line, as text or JSON (`--log-format`).
/// Log messages are constant strings; the data is in the metadata (STYLE.md).
struct StderrLogHandler: LogHandler {
    enum Format: String, CaseIterable, Sendable {
        case text
        case json
    }

    let label: String
    let format: Format
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let time = Self.timestamp()
        let line: String
        switch format {
        case .text:
            var text = "\(time) \(event.level.rawValue) \(event.message)"
            for key in merged.keys.sorted() {
                text += " \(key)=\(Self.quoteIfNeeded("\(merged[key]!)"))"
            }
            line = text
        case .json:
            var object: [String: String] = ["time": time, "level": event.level.rawValue, "message": "\(event.message)"]
            for (key, value) in merged { object[key] = "\(value)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            line = String(decoding: data, as: UTF8.self)
        }
        printError(line)
    }

    static func quoteIfNeeded(_ value: String) -> String {
        if value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) {
            return "\"" + value.replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        return value
    }

    static func timestamp() -> String {
        CivilTime(unixMilliseconds: Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))).rfc3339
    }
}
