import Foundation

/// Renders replicators' figures in the Prometheus text exposition format (version 0.0.4), the
/// body of `GET /metrics`. docs/operations.md lists every metric.
public enum MetricsExposition {
    /// One replicator's figures and the labels that tell it apart.
    public struct Source: Sendable {
        public var database: String
        public var replica: String
        public var spoolMaxBytes: Int64
        public var metrics: ReplicationMetrics
        /// The time the lag is measured at (Unix ms); `render` sets it.
        var nowMs: UInt64 = 0

        public init(database: String, replica: String, spoolMaxBytes: Int64, metrics: ReplicationMetrics) {
            self.database = database
            self.replica = replica
            self.spoolMaxBytes = spoolMaxBytes
            self.metrics = metrics
        }
    }

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private struct Family: Sendable {
        let name: String
        let type: String
        let help: String
        let samples: @Sendable (ReplicationMetrics.Values, Source) -> [(labels: String, value: Double)]
    }

    private static func one(
        _ name: String, _ type: String, _ help: String,
        _ value: @escaping @Sendable (ReplicationMetrics.Values, Source) -> Double
    ) -> Family {
        Family(name: name, type: type, help: help) { values, source in [("", value(values, source))] }
    }

    private static let families: [Family] = [
        one("walship_observed_txid", "gauge", "Newest transaction read from the WAL.") { v, _ in Double(v.observedTxid)
        },
        one(
            "walship_observed_commit_timestamp_seconds", "gauge",
            "Observed commit time of the newest transaction read from the WAL (Unix seconds)."
        ) { v, _ in Double(v.observedCommitMs) / 1000 },
        one("walship_shipped_txid", "gauge", "Newest transaction in a segment the store has confirmed.") { v, _ in
            Double(v.shippedTxid)
        },
        one(
            "walship_shipped_commit_timestamp_seconds", "gauge",
            "Observed commit time of the newest transaction in a segment the store has confirmed (Unix seconds); replication lag is walship_observed_commit_timestamp_seconds minus this."
        ) { v, _ in Double(v.shippedCommitMs) / 1000 },
        one(
            "walship_replication_lag_seconds", "gauge",
            "Age of the oldest transaction read from the WAL but not yet in the store (0 when everything read is shipped)."
        ) { v, s in v.pendingSinceMs.map { Double(s.nowMs > $0 ? s.nowMs - $0 : 0) / 1000 } ?? 0 },
        one("walship_transactions_total", "counter", "Transactions read from the WAL by this process.") { v, _ in
            Double(v.transactionsObserved)
        },
        one(
            "walship_generation_start_timestamp_seconds", "gauge",
            "When the current generation started (Unix seconds; 0 before the first)."
        ) { v, _ in Double(v.generationStartedMs) / 1000 },
        Family(
            name: "walship_generations_started_total", type: "counter",
            help:
                "Generations this process started, by reason; any reason but first_start means a break in the WAL that walship repaired with a new generation."
        ) { v, _ in
            ObjectHeader.GenerationReason.allCases.filter { $0 != .none }.map { reason in
                ("reason=\"\(reason.label)\"", Double(v.generationsStarted[reason] ?? 0))
            }
        },
        one("walship_segments_uploaded_total", "counter", "Segments uploaded.") { v, _ in Double(v.segmentsUploaded) },
        one(
            "walship_retention_deleted_objects_total", "counter",
            "Objects retention deleted (confirmed gone by a second LIST)."
        ) { v, _ in Double(v.retentionDeletedObjects) },
        one(
            "walship_retention_failures_total", "counter",
            "Prunes that failed or left objects they should have deleted (refused, still listed, or a store error)."
        ) { v, _ in Double(v.retentionFailures) },
        one(
            "walship_retention_window_start_timestamp_seconds", "gauge",
            "Start of the restore window the last prune guaranteed (Unix seconds; 0 before the first prune)."
        ) { v, _ in Double(v.retentionWindowStartMs) / 1000 },
        one("walship_snapshots_uploaded_total", "counter", "Snapshots uploaded.") { v, _ in
            Double(v.snapshotsUploaded)
        },
        one("walship_uploaded_bytes_total", "counter", "Bytes of objects uploaded.") { v, _ in Double(v.bytesUploaded)
        },
        one("walship_upload_failures_total", "counter", "Upload attempts that failed (each is retried).") { v, _ in
            Double(v.uploadFailures)
        },
        one(
            "walship_clock_backward_steps_total", "counter",
            "Backward steps of the wall clock; commit times did not follow them (they keep advancing with elapsed time)."
        ) { v, _ in Double(v.clockBackwardSteps) },
        one(
            "walship_clock_forward_steps_total", "counter",
            "Forward steps of the wall clock that commit times followed."
        ) { v, _ in Double(v.clockForwardSteps) },
        one(
            "walship_object_conflicts_total", "counter",
            "Spooled objects whose key already held another object in the store (never overwritten); each ended its generation."
        ) { v, _ in Double(v.objectConflicts) },
        one("walship_snapshot_failures_total", "counter", "Snapshots that failed.") { v, _ in
            Double(v.snapshotFailures)
        },
        one(
            "walship_last_snapshot_timestamp_seconds", "gauge",
            "When the newest snapshot this process uploaded was taken (Unix seconds; 0 if none)."
        ) { v, _ in Double(v.lastSnapshotMs) / 1000 },
        one("walship_spool_bytes", "gauge", "Bytes of objects waiting in the spool.") { v, _ in Double(v.spoolBytes) },
        one("walship_spool_objects", "gauge", "Objects waiting in the spool.") { v, _ in Double(v.spoolObjects) },
        one("walship_spool_max_bytes", "gauge", "The spool's limit (spool-max-bytes).") { _, s in
            Double(s.spoolMaxBytes)
        },
        one(
            "walship_spool_full_total", "counter",
            "Times the spool filled during a store outage and the read chain was ended (a new generation follows)."
        ) { v, _ in Double(v.spoolFullEvents) },
        one("walship_wal_frames", "gauge", "Frames in the published WAL at the last poll.") { v, _ in
            Double(v.walFrames)
        },
        one("walship_wal_bytes", "gauge", "Size of the published WAL at the last poll.") { v, _ in
            v.walFrames == 0 ? 0 : 32 + Double(v.walFrames) * Double(v.pageSize + 24)
        },
        one(
            "walship_checkpoint_restarts_total", "counter",
            "RESTART checkpoints the agent ran above wal-max-frames."
        ) { v, _ in Double(v.checkpointRestarts) },
        one(
            "walship_checkpoint_busy_total", "counter",
            "Agent RESTART checkpoints that gave up after checkpoint-busy-timeout."
        ) { v, _ in Double(v.checkpointBusy) },
        one(
            "walship_checkpoint_write_lock_seconds_total", "counter",
            "Time the agent's RESTART checkpoints held the database's write lock."
        ) { v, _ in v.writeLockSeconds },
        one(
            "walship_checkpoint_write_lock_seconds_max", "gauge",
            "Longest time one RESTART checkpoint of the agent held the write lock."
        ) { v, _ in v.longestWriteLockSeconds },
        one("walship_verify_runs_total", "counter", "Scheduled verifies of the replica (verify-interval).") { v, _ in
            Double(v.verifyRuns)
        },
        one(
            "walship_verify_failures_total", "counter",
            "Scheduled verifies that found a problem or could not run."
        ) { v, _ in Double(v.verifyFailures) },
        one(
            "walship_verify_last_success_timestamp_seconds", "gauge",
            "When the last scheduled verify that found no problem finished (Unix seconds; 0: none)."
        ) { v, _ in Double(v.lastVerifySuccessMs) / 1000 },
    ]

    /// The exposition of every source, each sample labelled with its database and replica.
    public static func render(
        _ sources: [Source], version: String, sqliteVersion: String,
        nowMs: UInt64 = UInt64(Date().timeIntervalSince1970 * 1000)
    ) -> String {
        var text = "# HELP walship_build_info walship's version and the SQLite library it runs with.\n"
        text += "# TYPE walship_build_info gauge\n"
        text += "walship_build_info{version=\"\(escape(version))\",sqlite=\"\(escape(sqliteVersion))\"} 1\n"
        let snapshots = sources.map { source in
            var source = source
            source.nowMs = nowMs
            return (source, source.metrics.current)
        }
        for family in families {
            text += "# HELP \(family.name) \(family.help)\n# TYPE \(family.name) \(family.type)\n"
            for (source, values) in snapshots {
                let base = "db=\"\(escape(source.database))\",replica=\"\(escape(source.replica))\""
                for sample in family.samples(values, source) {
                    let labels = sample.labels.isEmpty ? base : base + "," + sample.labels
                    text += "\(family.name){\(labels)} \(format(sample.value))\n"
                }
            }
        }
        return text
    }

    /// Label values escape backslash, double quote and newline.
    static func escape(_ value: String) -> String {
        var result = ""
        for character in value {
            switch character {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case "\n": result += "\\n"
            default: result.append(character)
            }
        }
        return result
    }

    static func format(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}
