// Runs the built `vmio-ptrace` binary (Fixtures.toolPath) and captures what it did:
// exit status (or the signal that ended it), standard output bytes, standard error.

import Foundation
import Testing
import VmioTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// What one run of a program did.
struct RunResult: CustomStringConvertible {
    /// The exit status, or the signal number when `signaled`.
    var status: Int32
    var signaled: Bool
    var timedOut: Bool
    var stdout: [UInt8]
    var stderr: String

    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    /// Standard output split in lines (without the trailing empty one).
    var lines: [String] { stdoutText.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).droppingTrailingEmpty() }
    var stderrLines: [String] { stderr.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).droppingTrailingEmpty() }

    /// Exited (not killed) with `code`.
    func exited(_ code: Int32) -> Bool { !signaled && !timedOut && status == code }

    /// Standard output parsed as one JSON object.
    var json: [String: Any]? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(stdout)) else { return nil }
        return object as? [String: Any]
    }

    var description: String {
        "status \(signaled ? "signal " : "")\(status)\(timedOut ? " (timed out)" : ""); "
            + "stdout: \(stdout.count <= 2000 ? stdoutText : String(stdoutText.prefix(2000)) + "…"); stderr: \(stderr)"
    }
}

extension Array where Element == String {
    func droppingTrailingEmpty() -> [String] {
        var copy = self
        while copy.last == "" { copy.removeLast() }
        return copy
    }
}

/// Reads a file descriptor to EOF on a background thread.
final class DrainThread: @unchecked Sendable {
    private let fd: Int32
    private let done = DispatchSemaphore(value: 0)
    private var bytes: [UInt8] = []

    init(fd: Int32) {
        self.fd = fd
        Thread { [self] in
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                bytes.append(contentsOf: chunk[0..<n])
            }
            done.signal()
        }.start()
    }

    /// Everything read, once EOF came (or after `timeout`, what came so far).
    func result(timeout: TimeInterval = 10) -> [UInt8] {
        _ = done.wait(timeout: .now() + timeout)
        return bytes
    }
}

/// A program started in the background, with its standard output and error captured,
/// or (with `stdoutPipe: false`) with standard output left to the caller.
final class Running: @unchecked Sendable {
    let process: Process
    private let out: DrainThread?
    private let err: DrainThread

    var pid: Int32 { process.processIdentifier }

    /// `stdout`: nil captures it; a FileHandle sends it there (e.g. a pipe the test does not drain).
    init(_ executable: String, _ arguments: [String], stdout: FileHandle? = nil) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let errPipe = Pipe()
        process.standardError = errPipe
        var outPipe: Pipe?
        if let stdout {
            process.standardOutput = stdout
        } else {
            outPipe = Pipe()
            process.standardOutput = outPipe
        }
        try process.run()
        try? errPipe.fileHandleForWriting.close()
        try? outPipe?.fileHandleForWriting.close()
        err = DrainThread(fd: errPipe.fileHandleForReading.fileDescriptor)
        out = outPipe.map { DrainThread(fd: $0.fileHandleForReading.fileDescriptor) }
        // Keep the read ends open as long as the drains need them.
        keep = [errPipe, outPipe as Any]
    }

    private var keep: [Any] = []

    /// Waits (up to `timeout` seconds, then SIGKILL) and collects the result.
    func finish(timeout: TimeInterval = 60) -> RunResult {
        let deadline = Date(timeIntervalSinceNow: timeout)
        var timedOut = false
        while process.isRunning {
            if Date() >= deadline {
                timedOut = true
                kill(process.processIdentifier, SIGKILL)
                let killDeadline = Date(timeIntervalSinceNow: 10)
                while process.isRunning && Date() < killDeadline { usleep(5_000) }
                break
            }
            usleep(2_000)
        }
        let stdout = out?.result() ?? []
        let stderr = String(decoding: err.result(), as: UTF8.self)
        let signaled = process.terminationReason == .uncaughtSignal
        return RunResult(
            status: process.terminationStatus, signaled: signaled, timedOut: timedOut, stdout: stdout, stderr: stderr)
    }

    var isRunning: Bool { process.isRunning }
}

enum Tool {
    static var path: String { Fixtures.toolPath.path }

    /// Runs `vmio-ptrace ARGS…` to completion (killed after `timeout` seconds).
    static func run(_ arguments: [String], timeout: TimeInterval = 60) throws -> RunResult {
        try Running(path, arguments).finish(timeout: timeout)
    }

    static func run(_ arguments: String..., timeout: TimeInterval = 60) throws -> RunResult {
        try run(arguments, timeout: timeout)
    }

    /// Runs any program to completion.
    static func runProgram(_ executable: String, _ arguments: [String], timeout: TimeInterval = 60) throws -> RunResult {
        try Running(executable, arguments).finish(timeout: timeout)
    }
}

// MARK: - Small helpers shared by the CLI tests

/// `0x…` lowercase hex.
func hx(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

/// Lowercase hex of bytes, no separators (what the holder's `get` prints).
func hexOf(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

/// Bytes of a hex string without separators.
func bytesOf(hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        out.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return out
}

/// The holder's initial byte at offset `i` of `buf` (ignoring the special values).
func holderPattern(_ i: Int) -> UInt8 { UInt8((i * 131 + 7) & 0xff) }

extension FixtureProcess {
    /// The holder's own view of `length` bytes at `address` (its `get` command), as bytes.
    func get(_ address: UInt64, _ length: Int) throws -> [UInt8] {
        let reply = try send("get \(hx(address)) \(length)")
        guard !reply.hasPrefix("error") else { throw HolderError(reply: reply) }
        return bytesOf(hex: reply)
    }

    var pidArg: String { String(pid) }
}

struct HolderError: Error { let reply: String }

/// A temporary file path that is removed at deinit.
final class TempPath {
    let path: String
    init(_ name: String) {
        path = NSTemporaryDirectory() + "vmio-cli-\(getpid())-\(UInt64.random(in: 0...UInt64.max))-\(name)"
    }
    deinit { unlink(path) }
    var contents: [UInt8]? { FileManager.default.contents(atPath: path).map { Array($0) } }
}

/// The state letter of every thread of `pid` (from /proc/PID/task/TID/stat), by tid.
func threadStates(_ pid: Int32) -> [Int32: String] {
    var states: [Int32: String] = [:]
    guard let tids = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return [:] }
    for name in tids {
        guard let tid = Int32(name), let stat = readProcFile("/proc/\(pid)/task/\(tid)/stat"),
            let close = stat.lastIndex(of: ")")
        else { continue }
        let rest = stat[stat.index(close, offsetBy: 2)...]
        if let state = rest.split(separator: " ").first { states[tid] = String(state) }
    }
    return states
}

/// The TracerPid of every thread of `pid`, by tid.
func threadTracers(_ pid: Int32) -> [Int32: String] {
    var out: [Int32: String] = [:]
    guard let tids = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return [:] }
    for name in tids {
        guard let tid = Int32(name), let text = readProcFile("/proc/\(pid)/task/\(tid)/status") else { continue }
        for line in text.split(separator: "\n") where line.hasPrefix("TracerPid:") {
            out[tid] = line.dropFirst("TracerPid:".count).trimmingCharacters(in: .whitespaces)
        }
    }
    return out
}

/// Polls `condition` every 5 ms for up to `timeout` seconds; true once it holds.
@discardableResult
func waitUntil(timeout: TimeInterval = 5, _ condition: () -> Bool) -> Bool {
    let deadline = Date(timeIntervalSinceNow: timeout)
    while !condition() {
        if Date() >= deadline { return false }
        usleep(5_000)
    }
    return true
}

/// The process is running (or sleeping), not stopped by a tracer, and nobody traces it.
func isFreeRunning(_ pid: Int32) -> Bool {
    let status = procStatus(pid)
    guard let state = status["State"] else { return false }
    return !state.hasPrefix("t") && !state.hasPrefix("T") && status["TracerPid"] == "0"
}

/// Parses the "N of M bytes moved" and "first faulting address 0x…" of a partial-copy line.
struct PartialLine {
    var moved: UInt64
    var requested: UInt64
    var faultAddress: UInt64?

    init?(_ text: String) {
        guard let ofRange = text.range(of: #"(\d+) of (\d+) bytes moved"#, options: .regularExpression) else {
            return nil
        }
        let parts = text[ofRange].split(separator: " ")
        guard let moved = UInt64(parts[0]), let requested = UInt64(parts[2]) else { return nil }
        self.moved = moved
        self.requested = requested
        if let faultRange = text.range(of: #"first faulting address 0x[0-9a-f]+"#, options: .regularExpression) {
            let hex = text[faultRange].split(separator: " ").last!.dropFirst(2)
            faultAddress = UInt64(hex, radix: 16)
        }
    }
}
