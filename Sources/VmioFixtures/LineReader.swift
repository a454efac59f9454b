// The lines a child process prints, read on a thread of their own so that a wait for the
// next one can time out and the child never blocks on a full pipe.

import Foundation
import VmIO

#if canImport(Glibc)
    import Glibc
#endif

/// Reads a file descriptor on a background thread and queues its lines, so waiters can
/// take the next line with a timeout instead of blocking forever.
public final class LineReader: Sendable {
    public enum Next: Sendable, Equatable { case line(String), eof, timeout }

    private struct State {
        var queue: [String] = []
        var eof = false
    }

    private let handle: FileHandle  // kept alive (and its descriptor open) while reading
    /// Wakes waiters; `state` changes only while it is held, so a waiter cannot miss a line.
    private let arrival = NSCondition()
    private let state = Locked(State())

    public init(_ handle: FileHandle, name: String) {
        self.handle = handle
        let thread = Thread { [self] in self.run() }
        thread.name = name
        thread.start()
    }

    private func run() {
        let fd = handle.fileDescriptor
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            let scanFrom = pending.count
            pending.append(contentsOf: chunk[0..<n])
            guard pending[scanFrom...].contains(10) else { continue }
            var lines: [String] = []
            var start = 0
            while let newline = pending[start...].firstIndex(of: 10) {
                lines.append(String(decoding: pending[start..<newline], as: UTF8.self))
                start = newline + 1
            }
            pending.removeFirst(start)
            publish { $0.queue.append(contentsOf: lines) }
        }
        // Closed at its end rather than when the reader goes: whatever holds the program (a
        // Process keeps its pipes) may live to the end of a test run, and a run starts
        // hundreds of programs (past about 1,300 open descriptors Foundation's Process.run
        // reads past a buffer: AddressSanitizer stops the run).
        try? handle.close()
        let rest = pending
        publish { state in
            if !rest.isEmpty { state.queue.append(String(decoding: rest, as: UTF8.self)) }
            state.eof = true
        }
    }

    private func publish(_ change: (inout State) -> Void) {
        arrival.lock()
        state.withLock { change(&$0) }
        arrival.broadcast()
        arrival.unlock()
    }

    /// Takes the next line, waiting up to `timeout` seconds.
    public func next(timeout: TimeInterval) -> Next {
        let deadline = Date(timeIntervalSinceNow: timeout)
        arrival.lock()
        defer { arrival.unlock() }
        while state.withLock({ $0.queue.isEmpty && !$0.eof }) {
            if !arrival.wait(until: deadline) { break }
        }
        return state.withLock { state in
            if !state.queue.isEmpty { return .line(state.queue.removeFirst()) }
            return state.eof ? .eof : .timeout
        }
    }

    /// All queued (not yet taken) lines, without taking them.
    public func snapshot() -> [String] { state.withLock { $0.queue } }

    /// Waits up to `timeout` seconds for end of file.
    public func waitForEOF(timeout: TimeInterval) {
        let deadline = Date(timeIntervalSinceNow: timeout)
        arrival.lock()
        defer { arrival.unlock() }
        while !state.withLock({ $0.eof }) {
            if !arrival.wait(until: deadline) { break }
        }
    }
}
