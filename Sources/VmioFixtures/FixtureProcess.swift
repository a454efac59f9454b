// A running fixture process: its facts, a line protocol on stdin/stdout, and an end that
// leaves nothing behind. See fixtures/README.md for what each fixture prints.

import Foundation
import VmIO

#if canImport(Glibc)
    import Glibc
#endif

public enum FixtureError: Error, CustomStringConvertible {
    /// The fixture binary is not in the build directory (run `swift build` first).
    case binaryNotFound(path: String)
    /// No line arrived in time. `output` is what the fixture printed so far (for launch).
    case timeout(FixtureKind, waitingFor: String, output: [String])
    /// The fixture's stdout closed (it exited or crashed) while we waited for a line.
    case exited(FixtureKind, waitingFor: String, output: [String], stderr: String)
    /// Writing to the fixture's stdin failed (errno), usually because it has exited; `ending`
    /// says how, when known.
    case writeFailed(FixtureKind, errno: Int32, ending: String = "")

    public var description: String {
        switch self {
        case .binaryNotFound(let path):
            return "fixture binary not found at \(path); run `swift build` (or set VMIO_BUILD_DIR)"
        case .timeout(let kind, let what, let output):
            return "vmio-fixture-\(kind.rawValue): timed out waiting for \(what); output so far: \(output)"
        case .exited(let kind, let what, let output, let stderr):
            return "vmio-fixture-\(kind.rawValue): stdout closed while waiting for \(what); "
                + "output: \(output); stderr: \(stderr)"
        case .writeFailed(let kind, let err, let ending):
            return "vmio-fixture-\(kind.rawValue): writing stdin failed: \(String(cString: strerror(err)))"
                + (ending.isEmpty ? "" : " (\(ending))")
        }
    }
}

/// write(2); a free function because FixtureProcess.write(_:) shadows the name inside the class.
private func posixWrite(_ fd: Int32, _ buf: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buf, count)
}

/// A running fixture, started by ``Fixtures/launch(_:arguments:executable:wrapper:readyTimeout:)``.
/// Everything it printed before `ready` is in `facts`. Ended (stdin closed, then SIGKILL if
/// needed) by `terminate()` or deinit.
public final class FixtureProcess: Sendable {
    public let kind: FixtureKind
    public let pid: Int32
    /// One entry a fact line: `"buf" -> ["0x7f...", "65536"]`, `"pid" -> ["1234"]`.
    /// `thread TID NAME` lines are collected in order as `"TID NAME"` under `"thread"`.
    public let facts: [String: [String]]
    /// The lines printed before `ready`, verbatim.
    public let factLines: [String]

    private struct Ending {
        var stdinClosed = false
        var terminated = false
    }

    private let process: Process
    private let stdinHandle: FileHandle
    private let stdout: LineReader
    private let stderr: LineReader
    private let ioLock = NSLock()  // one send at a time
    private let ending = Locked(Ending())

    init(kind: FixtureKind, program: PipedProgram, factLines: [String]) {
        self.kind = kind
        self.process = program.process
        self.stdinHandle = program.input
        self.stdout = program.output
        self.stderr = program.errors
        self.factLines = factLines
        self.pid = program.process.processIdentifier
        var facts: [String: [String]] = [:]
        for line in factLines {
            let fields = line.split(separator: " ").map(String.init)
            guard let key = fields.first else { continue }
            let values = Array(fields.dropFirst())
            if key == "thread" {
                facts["thread", default: []].append(values.joined(separator: " "))
            } else {
                facts[key] = values
            }
        }
        self.facts = facts
    }

    deinit { terminate() }

    /// `facts[key]![0]` parsed as hex (`0x...`). Stops with a clear message if absent.
    public func address(_ key: String) -> UInt64 {
        guard let text = facts[key]?.first, let value = Self.parse(text) else {
            preconditionFailure("vmio-fixture-\(kind.rawValue): no address fact '\(key)' in \(factLines)")
        }
        return value
    }

    /// `facts[key]![index]` as a number (hex if it starts with `0x`, else decimal).
    /// Without an index: the fact's last value, so `number("buf")` is buf's size and
    /// `number("count")` / `number("pid")` the single value. Stops with a clear message if absent.
    public func number(_ key: String, _ index: Int? = nil) -> UInt64 {
        let values = facts[key] ?? []
        let i = index ?? (values.count - 1)
        guard values.indices.contains(i), let value = Self.parse(values[i]) else {
            preconditionFailure(
                "vmio-fixture-\(kind.rawValue): no number at index \(i) of fact '\(key)' in \(factLines)")
        }
        return value
    }

    /// `facts[key]![index]` as printed (e.g. the hex of the random fixture's needle).
    public func text(_ key: String, _ index: Int = 0) -> String {
        guard let values = facts[key], values.indices.contains(index) else {
            preconditionFailure("vmio-fixture-\(kind.rawValue): no value \(index) of fact '\(key)' in \(factLines)")
        }
        return values[index]
    }

    /// The `thread TID NAME` facts (threads fixture), in the order printed.
    public var threads: [(tid: Int32, name: String)] {
        (facts["thread"] ?? []).compactMap { entry in
            let parts = entry.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2, let tid = Int32(parts[0]) else { return nil }
            return (tid, parts[1])
        }
    }

    /// Writes `line` to the fixture's stdin and returns its next stdout line.
    /// Throws if no line arrives within `timeout` seconds or the fixture has exited.
    public func send(_ line: String, timeout: TimeInterval = 10) throws -> String {
        ioLock.lock()
        defer { ioLock.unlock() }
        try write(line)
        return try readLine(timeout: timeout, waitingFor: "the reply to '\(line)'")
    }

    /// Writes `line` (a newline is added) to stdin without waiting for a reply.
    public func write(_ line: String) throws {
        if ending.withLock({ $0.stdinClosed }) { throw FixtureError.writeFailed(kind, errno: EPIPE) }
        let bytes = Array((line + "\n").utf8)
        var done = 0
        let fd = stdinHandle.fileDescriptor
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { posixWrite(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                let failure = errno
                if failure == EINTR { continue }
                throw FixtureError.writeFailed(kind, errno: failure, ending: endingDescription())
            }
            done += n
        }
    }

    /// The next stdout line (e.g. one the fixture prints on its own), waiting up to `timeout` seconds.
    public func readLine(timeout: TimeInterval = 10) throws -> String {
        try readLine(timeout: timeout, waitingFor: "a line")
    }

    private func readLine(timeout: TimeInterval, waitingFor what: String) throws -> String {
        switch stdout.next(timeout: timeout) {
        case .line(let line): return line
        case .timeout: throw FixtureError.timeout(kind, waitingFor: what, output: [])
        case .eof:
            stderr.waitForEOF(timeout: 0.5)
            throw FixtureError.exited(
                kind, waitingFor: what, output: [],
                stderr: stderr.snapshot().joined(separator: "\n") + " [\(endingDescription())]")
        }
    }

    /// How the process ended (waiting briefly for it to be reaped), for an error message.
    func endingDescription() -> String {
        guard waitForExit(timeout: 1) else { return "still running" }
        switch process.terminationReason {
        case .uncaughtSignal: return "killed by signal \(process.terminationStatus)"
        case .exit: return "exited with status \(process.terminationStatus)"
        @unknown default: return "ended"
        }
    }

    /// What the fixture wrote to stderr so far.
    public var stderrOutput: String { stderr.snapshot().joined(separator: "\n") }

    public var isRunning: Bool { process.isRunning }

    /// Waits up to `timeout` seconds for the process to exit on its own; true if it did.
    @discardableResult
    public func waitForExit(timeout: TimeInterval) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while process.isRunning {
            if Date() >= deadline { return false }
            usleep(5_000)
        }
        return true
    }

    /// The exit status (or terminating signal) once the process has exited, else nil.
    public var terminationStatus: Int32? { process.isRunning ? nil : process.terminationStatus }

    /// Closes stdin (every fixture exits 0 on EOF), waits up to 2 s, then SIGKILLs
    /// (which also works on a stopped or traced fixture) and waits for it to be reaped.
    /// Idempotent; also called from deinit.
    public func terminate() {
        let first = ending.withLock { ending in
            defer { ending = Ending(stdinClosed: true, terminated: true) }
            return !ending.terminated
        }
        guard first else { return }
        try? stdinHandle.close()
        if !waitForExit(timeout: 2) {
            kill(pid, SIGKILL)
            waitForExit(timeout: 10)
        }
    }

    static func parse(_ text: String) -> UInt64? {
        if text.hasPrefix("0x") || text.hasPrefix("0X") { return UInt64(text.dropFirst(2), radix: 16) }
        return UInt64(text)
    }
}
