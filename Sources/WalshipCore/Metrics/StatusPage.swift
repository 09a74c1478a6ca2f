import Foundation

/// The HTML of `GET /`: the status report for people. One self-contained page (inline style, no
/// script, no external asset); the "restore at" form is a plain GET of `/?at=TIME`.
public enum StatusPage {
    public static let contentType = "text/html; charset=utf-8"

    public static func render(_ report: StatusReport) -> String {
        var html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>walship status</title>
            <style>
            body{font:14px/1.45 system-ui,sans-serif;margin:1.5em;color:#1b1f24;background:#fff}
            h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.6em 0 .4em;word-break:break-all}
            h3{font-size:1em;margin:1em 0 .3em}
            table{border-collapse:collapse;margin:.3em 0}td,th{border:1px solid #d0d7de;padding:.25em .6em;text-align:left;vertical-align:top}
            th{background:#f6f8fa;font-weight:600}code,pre{font:13px ui-monospace,monospace;background:#f6f8fa}
            pre{padding:.6em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
            .ok{color:#1a7f37}.warn{color:#9a6700}.bad{color:#cf222e}.muted{color:#57606a}
            </style></head><body>
            <h1>walship</h1>
            <p class="muted">
            """
        html +=
            "version \(escape(report.version)), SQLite \(escape(report.sqliteVersion)); generated \(escape(report.generatedAt)); "
        html += report.ready ? "<span class=\"ok\">ready</span>" : "<span class=\"warn\">starting</span>"
        html +=
            ". The same as JSON: <a href=\"/api/v1/status\">/api/v1/status</a>; metrics: <a href=\"/metrics\">/metrics</a>.</p>\n"
        let at = report.databases.compactMap(\.point?.at).first ?? ""
        html += """
            <form method="get" action="/"><label>Restore at <input name="at" value="\(escape(at))" size="30" \
            placeholder="2026-12-06T10:31:07Z or -15m"></label> <button type="submit">Show command</button></form>

            """
        for database in report.databases { html += section(database) }
        if report.databases.isEmpty { html += "<p>No database is configured.</p>\n" }
        html += "</body></html>\n"
        return html
    }

    private static func section(_ db: StatusReport.Database) -> String {
        var html = "<h2>\(escape(db.path)) <span class=\"muted\">to \(escape(db.replica))</span></h2>\n"
        let stateClass = db.state == "replicating" ? "ok" : db.state == "lagging" ? "bad" : "warn"
        var rows: [(String, String)] = [
            ("replica", "<code>\(escape(db.replica))</code>"),
            ("state", "<span class=\"\(stateClass)\">\(escape(db.state))</span>"),
            ("replication lag", String(format: "%.1f s", db.lagSeconds)),
            (
                "generation",
                db.generation.map { "<code>\(escape($0))</code> since \(escape(db.generationStartedAt ?? "?"))" }
                    ?? "none yet"
            ),
            ("transactions", "observed \(db.observedTxid), in the store \(db.shippedTxid)"),
            ("last upload", escape(db.lastUploadAt ?? "none by this process")),
            ("last snapshot", escape(db.lastSnapshotAt ?? "none by this process")),
            ("WAL", ValueParsing.formatBytes(db.walBytes)),
            (
                "spool",
                "\(db.spoolObjects) objects, \(ValueParsing.formatBytes(db.spoolBytes)) of \(ValueParsing.formatBytes(db.spoolMaxBytes))"
                    + (db.spoolFullEvents > 0 ? " <span class=\"warn\">(full \(db.spoolFullEvents) times)</span>" : "")
            ),
            (
                "failures",
                "uploads \(db.uploadFailures), snapshots \(db.snapshotFailures), object conflicts \(db.objectConflicts), prunes \(db.retentionFailures)"
            ),
            ("retention", "\(db.retentionDeletedObjects) objects deleted by this process"),
            ("last verify", verifyText(db.lastVerify)),
        ]
        if let window = db.listing?.restoreWindow {
            rows.append(
                (
                    "restore window",
                    "\(escape(window.earliestTime)) (txid \(window.earliestTxid)) to \(escape(window.latestTime)) (txid \(window.latestTxid))"
                ))
        } else {
            rows.append(("restore window", "<span class=\"warn\">none yet (no snapshot in the replica)</span>"))
        }
        html += "<table>\n"
        for (name, value) in rows { html += "<tr><th>\(name)</th><td>\(value)</td></tr>\n" }
        html += "</table>\n"
        if let command = db.restoreLatest {
            html += "<h3>Restore the latest point</h3>\n<pre>\(escape(command))</pre>\n"
        }
        if let point = db.point {
            html += "<h3>Restore at \(escape(point.time ?? point.at))</h3>\n"
            if let command = point.command {
                let which =
                    point.afterLatest == true
                    ? "the time is after the newest restore point, so this restores that point"
                    : "the last transaction committed at or before that time"
                html +=
                    "<p>Generation <code>\(escape(point.generation ?? ""))</code>, txid at most \(point.txidAtMost ?? 0): \(which).</p>\n<pre>\(escape(command))</pre>\n"
            } else {
                html += "<p class=\"bad\">\(escape(point.error ?? "cannot be restored"))</p>\n"
            }
        }
        guard let listing = db.listing else {
            return html + "<p class=\"muted\">The replica's objects are listed once start-up is done.</p>\n"
        }
        return html + generations(listing)
    }

    /// Forked generations, then every generation with its restore points and snapshots.
    private static func generations(_ listing: ReplicaListing) -> String {
        var html = ""
        for fork in listing.forkedGenerations {
            html +=
                "<p class=\"bad\">Generation <code>\(fork.id)</code> was continued by two agents from txid \(fork.fromTxid): restore points after it need <code>--generation</code>.</p>\n"
        }
        html +=
            "<h3>Generations (\(listing.generations.count); \(listing.objects) objects, \(ValueParsing.formatBytes(listing.bytes)))</h3>\n"
        html +=
            "<table>\n<tr><th>generation</th><th>restore points</th><th>snapshots</th><th>segments</th><th>size</th></tr>\n"
        for generation in listing.generations.reversed() {
            let span =
                generation.firstTxid.map {
                    "txid \($0) to \(generation.lastTxid ?? $0)<br>\(escape(generation.firstTime ?? "")) to \(escape(generation.lastTime ?? ""))"
                } ?? "<span class=\"muted\">none (no snapshot yet)</span>"
            let missing = generation.missingTxids.map {
                "<br><span class=\"bad\">missing txids \($0[0]) to \($0[1])</span>"
            }.joined()
            let snapshots = generation.snapshots.map {
                "\(escape($0.takenAt)) txid \($0.usableTxid), \(ValueParsing.formatBytes($0.bytes))"
            }.joined(separator: "<br>")
            html +=
                "<tr><td><code>\(generation.id)</code></td><td>\(span)\(missing)</td><td>\(snapshots.isEmpty ? "none" : snapshots)</td><td>\(generation.segments)</td><td>\(ValueParsing.formatBytes(generation.bytes))</td></tr>\n"
        }
        html += "</table>\n"
        return html
    }

    private static func verifyText(_ verify: VerifyResult?) -> String {
        guard let verify else {
            return "<span class=\"muted\">none yet (set verify-interval, or run <code>walship verify</code>)</span>"
        }
        var text = verify.ok ? "<span class=\"ok\">ok</span>" : "<span class=\"bad\">FAILED</span>"
        text +=
            " at \(escape(verify.at)): \(verify.objectsChecked) new objects checked, \(verify.objectsKnown) sound in all"
        if let trial = verify.trialRestore {
            if let skipped = trial.skipped {
                text += "; trial restore skipped: \(escape(skipped))"
            } else if trial.error == nil {
                text += "; latest point (txid \(trial.txid ?? 0)) restored and checked"
            }
        }
        if let error = verify.error { text += "<br><span class=\"bad\">\(escape(error))</span>" }
        for problem in verify.problems.prefix(10) {
            text += "<br>\(escape(problem.kind.rawValue)): \(escape(problem.message))"
        }
        return text
    }

    /// Text for HTML content and attribute values.
    static func escape(_ text: String) -> String { Markup.escape(text) }
}
