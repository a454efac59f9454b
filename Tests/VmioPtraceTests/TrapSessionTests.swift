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

    /// A session waits on the thread that made it, which may have children of its own: one
    /// that ends meanwhile is its owner's to collect (a library user's, or Foundation's for a
    /// Process). Collected and dropped by the session, its status is lost, its owner's
    /// `waitpid` fails, and its pid can be reused while the owner still thinks it lives.
    @Test func aChildOfTheWaitingThreadKeepsItsExitStatus() throws {
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        let tick = fixture.address("tick")
        typealias Outcome = (hit: TrapEvent, child: pid_t, reaped: pid_t, status: Int32)
        let outcome = try Self.onOwnThread { () throws -> Outcome in
            var child: pid_t = 0
            let words: [String] = ["/bin/sh", "-c", "exit 7"]
            var argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
            defer { for word in argv { free(word) } }
            try #require(posix_spawn(&child, "/bin/sh", nil, nil, &argv, environ) == 0)
            // A zombie of this thread's before the session waits: the first child news it gets.
            let deadline = ContinuousClock.now + .seconds(30)
            while readProcFile("/proc/\(child)/stat")?.split(separator: " ")[2] != "Z" {
                try #require(ContinuousClock.now < deadline, "the child did not end")
                usleep(1_000)
            }
            let target = try Target(pid: fixture.pid)
            let session = try TrapSession(target: target)
            try session.addBreakpoint(at: tick)
            try fixture.write("tick")
            let hit = try session.wait(timeout: .seconds(30))
            _ = session.end()
            var status: Int32 = 0
            let reaped = waitpid(child, &status, WNOHANG)
            return (hit, child, reaped < 0 ? -errno : reaped, status)
        }
        #expect(outcome.hit.kind == .breakpoint, "\(outcome.hit)")
        #expect(outcome.reaped == outcome.child, "waitpid: \(outcome.reaped) (−errno)")
        #expect(outcome.status >> 8 & 0xff == 7)
        #expect(try fixture.readLine(timeout: 10) == "ticked 7007")
    }

    /// Runs `body` on a thread of its own (a session and the children it must not collect
    /// belong to one thread) and returns what it returned or threw.
    static func onOwnThread<T>(_ body: @escaping () throws -> T) throws -> T {
        nonisolated(unsafe) var result: Result<T, any Error>?
        nonisolated(unsafe) let body = body
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            result = Result { try body() }
            done.signal()
        }
        thread.start()
        done.wait()
        return try result!.get()
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
