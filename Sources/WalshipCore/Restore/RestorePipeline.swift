/// The overlapping stages of a restore, in the order objects go through them: downloads run up
/// to `parallel` objects ahead of the one being applied; segments within `decodeAhead` of it are
/// decoded (decompressed and coalesced, `SegmentDecoder`) on other threads; the caller applies
/// the ready objects in order, the snapshot first. At most `decodeAhead` decoded segments wait
/// in memory. The stages' tasks run in the caller's task group; this type keeps what they have
/// done and decides what runs next.
struct RestorePipeline {
    /// One object of the plan.
    struct Object: Sendable {
        enum Kind: Sendable {
            case snapshot(ReplicaLayout.SnapshotEntry)
            case segment(ReplicaLayout.SegmentEntry)
        }

        var key: String
        var size: Int64
        var kind: Kind
    }

    /// What a stage's task reports.
    enum Step: Sendable {
        case downloaded(index: Int, path: String, took: Duration)
        case decoded(index: Int, Decode, took: Duration)
    }

    /// A segment decoded ahead, or one whose writes passed `PageWrites.aheadLimitBytes` (it is
    /// decoded as it is applied instead).
    enum Decode: Sendable {
        case decoded(SegmentDecoder.Decoded)
        case tooLarge
    }

    /// An object whose turn it is, downloaded (and decoded, for a segment that fit).
    struct Ready {
        var index: Int
        var object: Object
        var path: String
        var decoded: SegmentDecoder.Decoded?
    }

    let objects: [Object]
    let plan: RestorePlanner.Plan
    let downloads: String
    let store: any ObjectStore
    let parallel: Int
    let decodeAhead: Int
    /// The clock stage times are measured on.
    let clock: any MonotonicClock
    private(set) var downloadTime = Duration.zero
    private(set) var decodeTime = Duration.zero
    private(set) var done = 0
    private(set) var bytesDone: Int64 = 0
    private var nextDownload = 0
    private var nextDecode = 1  // Object 0 is the snapshot, written as it is read.
    private var downloaded: [Int: String] = [:]
    private var decoded: [Int: Decode] = [:]

    init(
        plan: RestorePlanner.Plan, downloads: String, store: any ObjectStore, parallel: Int, processors: Int,
        clock: any MonotonicClock = ContinuousClock()
    ) {
        self.clock = clock
        self.plan = plan
        self.downloads = downloads
        self.store = store
        self.parallel = max(1, parallel)
        decodeAhead = max(1, min(parallel, processors, 3))
        objects =
            [Object(key: plan.snapshot.key, size: plan.snapshot.size, kind: .snapshot(plan.snapshot))]
            + plan.segments.map { Object(key: $0.key, size: $0.size, kind: .segment($0)) }
    }

    var totalBytes: Int64 { objects.reduce(0) { $0 + $1.size } }
    var isFinished: Bool { done >= objects.count }

    /// Starts the first downloads.
    mutating func start(in group: inout ThrowingTaskGroup<Step, any Error>) {
        for _ in 0..<parallel { scheduleDownload(in: &group) }
        scheduleDecodes(in: &group)
    }

    /// Records what a stage reported, and starts the decodes a download makes possible.
    mutating func record(_ step: Step, in group: inout ThrowingTaskGroup<Step, any Error>) {
        switch step {
        case .downloaded(let index, let path, let took):
            downloaded[index] = path
            downloadTime += took
            scheduleDecodes(in: &group)
        case .decoded(let index, let result, let took):
            decoded[index] = result
            decodeTime += took
        }
    }

    /// The next object to apply, when it is ready: downloaded, and for a segment decoded ahead
    /// (or found too large to be).
    mutating func nextReady() -> Ready? {
        guard done < objects.count, let path = downloaded[done] else { return nil }
        let object = objects[done]
        guard case .segment = object.kind else { return Ready(index: done, object: object, path: path) }
        switch decoded[done] {
        case nil: return nil
        case .decoded(let result)?: return Ready(index: done, object: object, path: path, decoded: result)
        case .tooLarge?: return Ready(index: done, object: object, path: path)
        }
    }

    /// Marks the ready object applied and starts what its turn makes room for.
    mutating func applied(_ ready: Ready, in group: inout ThrowingTaskGroup<Step, any Error>) {
        downloaded[ready.index] = nil
        decoded[ready.index] = nil
        bytesDone += ready.object.size
        done += 1
        scheduleDownload(in: &group)
        scheduleDecodes(in: &group)
    }

    /// Ends the pipeline early (the target is reached).
    mutating func finishEarly() { done = objects.count }

    private mutating func scheduleDownload(in group: inout ThrowingTaskGroup<Step, any Error>) {
        guard nextDownload < objects.count else { return }
        let index = nextDownload
        let key = objects[index].key
        let path = "\(downloads)/\(index).obj"
        let (store, clock) = (store, clock)
        nextDownload += 1
        group.addTask {
            let start = clock.now
            do {
                _ = try await store.download(key, to: path)
            } catch let error as WalshipError where error.code == .objectNotFound {
                throw WalshipError(.objectNotFound, "object '\(key)' is missing from the replica")
            }
            // Checksums are checked as segments are decoded, and beside the writing of the
            // snapshot (a failure then removes what was written).
            return .downloaded(index: index, path: path, took: clock.now - start)
        }
    }

    private mutating func scheduleDecodes(in group: inout ThrowingTaskGroup<Step, any Error>) {
        while nextDecode < objects.count, nextDecode <= done + decodeAhead, let path = downloaded[nextDecode],
            case .segment(let entry) = objects[nextDecode].kind
        {
            let index = nextDecode
            let (plan, clock) = (plan, clock)
            nextDecode += 1
            group.addTask {
                let start = clock.now
                let result = try await Blocking.run { try Self.decode(path: path, entry: entry, plan: plan) }
                return .decoded(index: index, result, took: clock.now - start)
            }
        }
    }

    private struct DecodeAheadOverflow: Error {}

    private static func decode(
        path: String, entry: ReplicaLayout.SegmentEntry, plan: RestorePlanner.Plan
    ) throws
        -> Decode
    {
        do {
            return .decoded(
                try SegmentDecoder.decode(
                    path: path, entry: entry, plan: plan, fromTxid: plan.snapshot.fromTxid, verified: false,
                    limitBytes: PageWrites.aheadLimitBytes, overflow: { _ in throw DecodeAheadOverflow() }))
        } catch is DecodeAheadOverflow {
            return .tooLarge
        } catch let error as WalshipError where error.code == .objectCorrupt {
            // A corrupt payload fails its checksum: say that rather than how decoding it failed.
            _ = try ObjectFile.verify(path: path, key: entry.key)
            throw error
        }
    }
}
