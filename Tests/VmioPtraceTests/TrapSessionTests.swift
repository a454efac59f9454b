// TrapSession as a library (issue 13): a breakpoint hit with its arguments, a single step, a
// finish to the caller with the return value, a watchpoint's values, and the cleanup verified
// (every byte put back, DR7 zero on every thread) before the target is let go.

import Foundation
import Testing
import VmIO
import VmioFixtures
import VmioPtrace
import VmioTestSupport

@Suite(.serialized) struct TrapSessionTests {
    @Test func breakpointStepFinishAndCleanup() throws {
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        let tick = fixture.address("tick")
        let target = try Target(pid: fixture.pid)
        let session = try TrapSession(target: target)
        let trap = try session.addBreakpoint(at: tick)
        try fixture.write("tick")
        let hit = try session.wait(timeout: .seconds(30))
        #expect(hit.kind == .breakpoint && hit.trap?.id == trap.id && hit.pc == tick, "\(hit)")
        #expect(hit.registers?["rdi"] == 7 && hit.registers?["rsi"] == 7)
        let stepped = try session.step(hit.tid)
        #expect(stepped.kind == .step && stepped.pc > tick && stepped.pc < tick + 16, "\(stepped)")
        let done = try session.finish(hit.tid)
        #expect(done.kind == .finish, "\(done)")
        #expect(done.registers?["rax"] == 7007, "\(done)")
        #expect(target.symbols.symbolize(done.pc)?.name == "main", "\(done)")
        let cleanup = session.end()
        #expect(cleanup.verified && cleanup.bytesRestored == 1 && cleanup.threadsCleared == 1, "\(cleanup)")
        #expect(try fixture.readLine(timeout: 10) == "ticked 7007")
        #expect(try target.trapLeftovers().isClean)
    }

    @Test func watchpointValuesAndNewThreads() throws {
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        let target = try Target(pid: fixture.pid)
        let session = try TrapSession(target: target)
        try session.addWatchpoint(at: fixture.address("watched"), length: 8)
        try fixture.write("threads 2")
        var values: [UInt64] = []
        var tids = Set<Int32>()
        for _ in 0..<6 {
            let event = try session.wait(timeout: .seconds(30))
            #expect(event.kind == .watchpoint, "\(event)")
            values.append(event.new.map { $0.reversed().reduce(0) { $0 << 8 | UInt64($1) } } ?? 0)
            tids.insert(event.tid)
        }
        #expect(values == [1, 2, 3, 4, 5, 6])
        #expect(tids.count >= 1 && !tids.contains(fixture.pid))
        let cleanup = session.end()
        #expect(cleanup.verified, "\(cleanup)")
        #expect(try fixture.readLine(timeout: 10) == "done 6")
        #expect(try target.trapLeftovers().isClean)
    }

    @Test func dr7Encoding() {
        let pieces = DebugRegisters.pieces(address: 0x1004, length: 12, access: .write)
        #expect(pieces.map(\.length) == [4, 8] && pieces.map(\.address) == [0x1004, 0x1008])
        #expect(DebugRegisters.pieces(address: 0x1001, length: 32, access: .access).count == 7)
        // Slot 0: write, 8 bytes (LEN 10, R/W 01); slot 2: execute, 1 byte.
        let dr7 = DebugRegisters.control([
            pieces[1], nil, DebugPiece(address: 0x2000, length: 1, access: .execute), nil,
        ])
        #expect(dr7 == 0b1 | 0b01 << 16 | 0b10 << 18 | 0b1 << 4)
        #expect(DebugRegisters.enabledSlots(dr7) == [0, 2])
    }
}
