/// Hands the non-Sendable loop to the tasks that use it in turn (start, then the WAL thread; the
/// snapshot task only calls its Sendable parts).
final class LoopBox: @unchecked Sendable {  // The WAL thread is the loop's only mutator.
    let loop: ReplicationLoop
    init(_ loop: ReplicationLoop) { self.loop = loop }
}
