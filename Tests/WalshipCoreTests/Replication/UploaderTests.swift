import Logging
import Testing
import WalshipTesting

@testable import WalshipCore

@Suite("Uploader backoff")
struct UploaderTests {
    /// A spool holding one small segment object, and an uploader on a manual clock whose store
    /// fails puts as `plan` says.
    struct Setup {
        let directory: TemporaryDirectory
        let spool: Spool
        let plan = FaultPlan()
        let clock = ManualClock()
        let uploader: Uploader

        init() throws {
            directory = try TemporaryDirectory()
            spool = try Spool(directory: directory.file("spool"), maxBytes: 1 << 30)
            let header = ObjectHeader(
                kind: .segment, codec: .none, pageSize: 4096, generation: 0x1a24_0000_0000_0001, firstTxid: 1,
                lastTxid: 1, firstMs: 1_764_000_000_000, lastMs: 1_764_000_000_000)
            let path = spool.temporaryPath("segment")
            _ = try ObjectFile.write(to: path, header: header) { emit in
                try [UInt8](repeating: 7, count: 100).withUnsafeBytes { try emit($0) }
            }
            try spool.add(path)
            let store = FaultInjectingObjectStore(
                base: try FileObjectStore(root: directory.file("replica"), create: true), plan: plan)
            uploader = Uploader(
                store: store, layout: ReplicaLayout(prefix: ""), spool: spool, logger: Logger(label: "test"),
                clock: clock)
        }
    }

    @Test("failed uploads are retried after 500 ms, 1 s and 2 s on the uploader's clock, and the object goes up")
    func retriesWithBackoff() async throws {
        let setup = try Setup()
        defer { setup.directory.remove() }
        setup.plan.failNext(3, with: .slowDown)
        let uploader = setup.uploader
        let drain = Task { await uploader.drain(until: nil) }
        for pause in [500, 1000, 2000] {
            #expect(await setup.clock.waitForSleepers(1))
            setup.clock.advance(by: .milliseconds(pause - 1))
            #expect(setup.clock.sleepers == 1, "woke before its \(pause) ms")
            setup.clock.advance(by: .milliseconds(1))
        }
        #expect(await drain.value)
        #expect(setup.spool.pending.isEmpty)
    }

    @Test("with giveUpFailingFor, a store that fails every upload is given up once that long has passed on the clock")
    func givesUpAfterFailingFor() async throws {
        let setup = try Setup()
        defer { setup.directory.remove() }
        setup.plan.failNext(100, with: .slowDown)
        let uploader = setup.uploader
        let drain = Task { await uploader.drain(until: nil, giveUpFailingFor: .seconds(5)) }
        // Pauses 0.5, 1 and 2 s, then the 1.5 s left of the 5 s.
        for pause in [500, 1000, 2000, 1500] {
            #expect(await setup.clock.waitForSleepers(1))
            setup.clock.advance(by: .milliseconds(pause))
        }
        #expect(await drain.value == false)
        #expect(setup.spool.pending.count == 1, "the object stays in the spool")
    }

    @Test("a stop ends the backoff at once")
    func stopEndsBackoff() async throws {
        let setup = try Setup()
        defer { setup.directory.remove() }
        setup.plan.failNext(100, with: .slowDown)
        let uploader = setup.uploader
        let stop = StopSignal()
        let drain = Task { await uploader.drain(until: nil, stop: stop) }
        #expect(await setup.clock.waitForSleepers(1))
        stop.stop()
        #expect(await drain.value == false)
        #expect(setup.spool.pending.count == 1)
    }
}
