// MemoryChunks: a target's memory as an AsyncSequence of chunks, on real processes: the
// bytes in order, holes, the report last, and a cancelled or abandoned transfer that lets a
// stopped target go (checked in /proc/PID/status: TracerPid and State).

import Foundation
import Testing
import VmIO
import VmioFixtures
import VmioPtrace
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct MemoryChunksTests {
    /// `TracerPid` and the state letter of `/proc/PID/status`.
    /// ``traced(_:)`` of a fixture; a fixture that is gone says how it ended.
    static func traced(_ fixture: FixtureProcess) throws -> (tracer: Int32, state: String) {
        do { return try traced(fixture.pid) } catch {
            throw FixtureGone(pid: fixture.pid, ending: fixture.terminationStatus, reading: "\(error)")
        }
    }

    struct FixtureGone: Error { let pid: Int32, ending: Int32?, reading: String }

    static func traced(_ pid: Int32) throws -> (tracer: Int32, state: String) {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        var tracer: Int32 = -1
        var state = ""
        for line in status.split(separator: "\n") {
            let value = line.drop { $0 != ":" }.dropFirst().trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("TracerPid:") { tracer = Int32(value)! }
            if line.hasPrefix("State:") { state = String(value.prefix(1)) }
        }
        return (tracer, state)
    }

    /// Every element of `chunks`.
    static func collect(_ chunks: MemoryChunks) async throws(TargetError) -> [MemoryChunk] {
        var elements: [MemoryChunk] = []
        for try await chunk in chunks { elements.append(chunk) }
        return elements
    }

    @Test("a region's bytes in chunks, in order; the unmapped rest one hole; the report last")
    func chunksHoleAndReport() async throws {
        let holder = try Fixtures.launch(.holder)
        let edge = holder.address("edge")
        let range = try AddressRange(start: edge, count: 3 * 4096)
        let elements = try await Self.collect(MemoryChunks(pid: holder.pid, range: range, chunkSize: 1024))
        try #require(elements.count == 6, "\(elements)")
        for (i, element) in elements.prefix(4).enumerated() {
            guard case .bytes(let address, let bytes) = element else {
                Issue.record("element \(i) is \(element)")
                continue
            }
            #expect(address == edge + UInt64(i * 1024) && bytes == [UInt8](repeating: 0xab, count: 1024))
        }
        guard case .hole(let hole) = elements[4], case .end(let report) = elements[5] else {
            Issue.record("\(elements.suffix(2))")
            return
        }
        #expect(hole.address == edge + 4096 && hole.length == 8192 && hole.kind == .pageFault(address: edge + 4096))
        #expect(report.moved == 4096 && report.holes == [hole] && report.stop == nil)
    }

    @Test("the bytes are the target's: buf chunk by chunk, as the holder reads it itself; stopped and let go")
    func bytesMatchWhileStopped() async throws {
        let holder = try Fixtures.launch(.holder)
        let buf = holder.address("buf")
        let range = try AddressRange(start: buf, count: 65536)
        var bytes: [UInt8] = []
        var report: TransferReport?
        for try await chunk in MemoryChunks(pid: holder.pid, range: range, chunkSize: 4096, stopTarget: true) {
            switch chunk {
            case .bytes(let address, let chunkBytes):
                #expect(address == buf + UInt64(bytes.count) && chunkBytes.count == 4096)
                if address == buf {  // 15 chunks to go: the reading thread waits for this loop
                    #expect(try Self.traced(holder.pid).tracer != 0, "held stopped while it streams")
                }
                bytes += chunkBytes
            case .hole(let hole): Issue.record("hole \(hole)")
            case .end(let last): report = last
            }
        }
        #expect(report?.isComplete == true)
        let hex = try holder.send("get 0x\(String(buf, radix: 16)) 65536", timeout: 30)
        #expect(bytes.map { String(format: "%02x", $0) }.joined() == hex)
        #expect(try Self.traced(holder.pid).tracer == 0)
    }

    @Test("under .stop a fault ends the sequence: the report names it; no error")
    func faultEndsUnderStop() async throws {
        let holder = try Fixtures.launch(.holder)
        let guardPage = holder.address("guard")
        let range = try AddressRange(start: guardPage - 4096, count: 8192)
        let elements = try await Self.collect(MemoryChunks(pid: holder.pid, range: range, policy: .stop))
        guard elements.count == 2, case .bytes(_, let bytes) = elements[0], case .end(let report) = elements[1] else {
            Issue.record("\(elements)")
            return
        }
        #expect(bytes.count == 4096 && report.moved == 4096)
        #expect(report.stop?.faultAddress == guardPage && report.stop?.side == .source)
    }

    @Test("a process that is not there: TargetError.noSuchProcess, thrown by next()")
    func missingProcess() async throws {
        let range = try AddressRange(start: 0x1000, count: 16)
        await #expect(throws: TargetError.noSuchProcess(pid: Int32.max)) {
            _ = try await Self.collect(MemoryChunks(pid: Int32.max, range: range))
        }
    }

    @Test("a cancelled task: the sequence ends once the stopped target runs again, untraced")
    func cancellationReleasesTheTarget() async throws {
        let holder = try Fixtures.launch(.holder)
        let range = try AddressRange(start: holder.address("buf"), count: 65536)
        let (firstChunk, arrived) = AsyncStream.makeStream(of: Void.self)
        let consumer = Task {
            // A failure before the first chunk ends the wait below too (then thrown by value).
            defer { arrived.finish() }
            var chunks = 0
            for try await chunk in MemoryChunks(pid: holder.pid, range: range, chunkSize: 4096, stopTarget: true) {
                guard case .bytes = chunk else { continue }
                chunks += 1
                arrived.yield()
                // Waits here, holding the transfer, until the task is cancelled.
                try? await Task.sleep(for: .seconds(120))
            }
            return chunks
        }
        defer { consumer.cancel() }
        for await _ in firstChunk { break }
        let held = try Self.traced(holder)
        #expect(held.tracer != 0 && held.state == "t", "stopped by the transfer: \(held)")
        consumer.cancel()
        let chunks = try await consumer.value
        #expect(chunks == 1)
        let released = try Self.traced(holder)
        #expect(released.tracer == 0 && released.state != "t" && released.state != "T", "\(released)")
        #expect(try holder.send("ping") == "pong")
    }

    @Test("an iterator dropped before the end (a break) lets the target go too")
    func breakReleasesTheTarget() async throws {
        let holder = try Fixtures.launch(.holder)
        let range = try AddressRange(start: holder.address("buf"), count: 65536)
        for try await chunk in MemoryChunks(pid: holder.pid, range: range, chunkSize: 4096, stopTarget: true) {
            if case .bytes = chunk { break }
        }
        // The transfer ends on its own thread after the iterator goes: wait for it, boundedly.
        let deadline = ContinuousClock.now + .seconds(10)
        while try Self.traced(holder.pid).tracer != 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        let released = try Self.traced(holder.pid)
        #expect(released.tracer == 0 && released.state != "t", "\(released)")
        #expect(try holder.send("ping") == "pong")
    }
}
