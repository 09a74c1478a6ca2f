import Crypto
import Foundation
import WalshipCore

/// A hash of a database's logical content: every table's schema and rows in rowid order, so two
/// files with the same content hash alike even when their bytes differ (the backup API rewrites
/// header fields). The oracle of restore tests.
public enum ContentHash {
    public static func of(connection: Connection) throws -> String {
        var hasher = SHA256()
        let tables = try connection.textColumn(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        for table in tables {
            let sql = try connection.scalarText("SELECT sql FROM sqlite_schema WHERE name = '\(table)'") ?? ""
            hasher.update(data: Data(sql.utf8))
            let statement = try connection.prepare("SELECT * FROM \"\(table)\" ORDER BY rowid")
            while try statement.step() {
                for column in 0..<statement.columnCount {
                    hasher.update(data: [UInt8(statement.columnType(column))])
                    hasher.update(data: statement.blob(column))
                }
            }
        }
        let indexes = try connection.textColumn(
            "SELECT name || ':' || coalesce(sql, '') FROM sqlite_schema WHERE type = 'index' ORDER BY name")
        for index in indexes { hasher.update(data: Data(index.utf8)) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    public static func of(path: String) throws -> String {
        let connection = try Connection(path: path, mode: [.readOnly])
        defer { connection.close() }
        return try of(connection: connection)
    }
}
