import Foundation
import Testing

@testable import walship

@Suite("Settings table")
struct SettingsTests {
    /// The rows of docs/configuration.md's settings table: key cell, level cell, default cell.
    static func documentedRows() throws -> [(keys: String, level: String, defaultValue: String)] {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/configuration.md").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let table = try #require(text.range(of: "| key | level | default | meaning |"))
        return text[table.upperBound...].split(separator: "\n").dropFirst().prefix { $0.hasPrefix("|") }.map { line in
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            return (cells[1], cells[2], cells[3])
        }
    }

    @Test(
        "every setting is in docs/configuration.md's table, at its levels and with its default; the doc names no other key"
    )
    func documentationMatchesTable() throws {
        let rows = try Self.documentedRows()
        #expect(rows.count > 10)
        for setting in Setting.all where !setting.unsupported {
            let key = setting.key
            let row = rows.first { row in
                ["`\(key)`", ".\(key)`", "].\(key)`", "`\(key).", "`\(key)["].contains { row.keys.contains($0) }
            }
            guard let row else {
                Issue.record("'\(key)' is not in docs/configuration.md's table")
                continue
            }
            if row.keys.contains("`\(key)`") {
                for level in setting.levels {
                    #expect(row.level.contains(level.rawValue), "'\(key)': the doc's level is '\(row.level)'")
                }
            }
            #expect(
                row.defaultValue.contains(setting.defaultValue),
                "'\(key)': the table says \(setting.defaultValue), the doc '\(row.defaultValue)'")
        }
        // Each backticked key the doc's table names is a setting.
        let known = Set(Setting.all.map(\.key))
        for row in rows {
            for token in row.keys.split(separator: "`", omittingEmptySubsequences: false).enumerated().filter({
                $0.offset % 2 == 1
            }).map(\.element) {
                let key = token.split(whereSeparator: { ".[]".contains($0) }).last.map(String.init) ?? ""
                #expect(known.contains(key), "the doc's table names '\(token)', which is no setting")
            }
        }
    }

    @Test("each flag of walship replicate is named in docs/configuration.md and shows the table's default in --help")
    func flagsMatchTable() throws {
        let help = ReplicateCommand.helpMessage(columns: 1000)
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/configuration.md").path
        let doc = try String(contentsOfFile: path, encoding: .utf8)
        for setting in Setting.all {
            guard let flag = setting.flag else { continue }
            #expect(doc.contains("`\(flag)`"), "docs/configuration.md does not name \(flag)")
            // The flag's entry runs to the next option's; --help wraps it, so compare it unwrapped.
            guard let start = help.range(of: "  \(flag) ") else {
                Issue.record("--help does not show \(flag)")
                continue
            }
            let rest = help[start.upperBound...]
            let entry = rest[..<(rest.range(of: "\n  -")?.lowerBound ?? rest.endIndex)]
            let unwrapped = entry.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            #expect(unwrapped.contains("(default \(setting.defaultValue))"), "\(flag): \(unwrapped)")
        }
    }

    @Test("the decoder's key sets are the table's")
    func keySets() {
        #expect(ConfigFile.bucketKeys.contains("sync-interval") && ConfigFile.databaseKeys.contains("sync-interval"))
        #expect(!ConfigFile.globalKeys.contains("sync-interval"))
        #expect(ConfigFile.unsupportedKeys == ["encryption-key-file"])
        #expect(ConfigFile.globalKeys.isDisjoint(with: ConfigFile.unsupportedKeys))
    }
}
