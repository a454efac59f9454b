// Runs the built `vmio-ptrace` binary (Fixtures.toolPath) and captures what it did:
// exit status (or the signal that ended it), standard output bytes, standard error.

import Foundation
import Testing
import VmioFixtures
import VmioPtrace
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
    var lines: [String] {
        stdoutText.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).droppingTrailingEmpty()
    }
    var stderrLines: [String] {
        stderr.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).droppingTrailingEmpty()
    }

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
    private let lock = NSLock()
    private var bytes: [UInt8] = []

    init(fd: Int32, closeAtEOF: Bool = false) {
        self.fd = fd
        Thread { [self] in
            defer { if closeAtEOF { close(fd) } }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                lock.withLock { bytes.append(contentsOf: chunk[0..<n]) }
            }
            done.signal()
        }.start()
    }

    /// Everything read, once EOF came (or after `timeout`, what came so far). May be called again.
    func result(timeout: TimeInterval = 10) -> [UInt8] {
        if done.wait(timeout: .now() + timeout) == .success { done.signal() }  // leave it signalled
        return lock.withLock { bytes }
    }

    /// What was read so far, without waiting.
    func snapshot() -> [UInt8] { lock.withLock { bytes } }
}

/// A program started in the background with `posix_spawn`, its standard output and error
/// captured, or (with `stdout:`) its standard output sent where the caller says.
///
/// Not Foundation's `Process`: a child inherits the signal mask of the thread that starts it,
/// and the test threads (libdispatch workers) block SIGINT, SIGTERM, SIGHUP, SIGQUIT… — a tool
/// started that way would never see the signals the tests send it. Here the child starts with
/// an empty mask, every signal at its default action, stdin on /dev/null, and no other
/// descriptor of the test process (closefrom 3).
final class Running: @unchecked Sendable {
    let pid: Int32
    private let out: DrainThread?
    private let err: DrainThread?
    private let lock = NSLock()
    private var reaped: Int32?  // the wait status, once reaped

    /// `stdout`: nil captures it; a FileHandle sends it there (e.g. a pipe the test does not drain).
    /// `stderrFD`: nil captures standard error; a descriptor sends it there (e.g. a terminal).
    /// `blocking`: signals the child starts with blocked (none by default).
    init(
        _ executable: String, _ arguments: [String], stdout: FileHandle? = nil, stderrFD: Int32? = nil,
        blocking: [Int32] = []
    ) throws {
        _ = ignoreSIGPIPEOnce
        var errPipe: [Int32] = [-1, -1], outPipe: [Int32] = [-1, -1]
        if stderrFD == nil {
            guard cloexecPipe(&errPipe) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        }
        if stdout == nil {
            guard cloexecPipe(&outPipe) == 0 else {
                if errPipe[0] >= 0 { close(errPipe[0]); close(errPipe[1]) }
                throw POSIXError(.init(rawValue: errno) ?? .EIO)
            }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout?.fileDescriptor ?? outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, stderrFD ?? errPipe[1], 2)
        if let closeFrom = spawnCloseFrom { _ = closeFrom(&actions, 3) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        for signal in blocking { sigaddset(&none, signal) }
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, &argv, environ)
        if errPipe[1] >= 0 { close(errPipe[1]) }
        if outPipe[1] >= 0 { close(outPipe[1]) }
        guard rc == 0 else {
            if errPipe[0] >= 0 { close(errPipe[0]) }
            if outPipe[0] >= 0 { close(outPipe[0]) }
            throw POSIXError(.init(rawValue: rc) ?? .EIO)
        }
        pid = child
        err = errPipe[0] >= 0 ? DrainThread(fd: errPipe[0], closeAtEOF: true) : nil
        out = stdout == nil ? DrainThread(fd: outPipe[0], closeAtEOF: true) : nil
    }

    /// Reaps the child if it has exited; true while it runs.
    var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        if reaped != nil { return false }
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid { reaped = status; return false }
        if r < 0 && errno == ECHILD { reaped = 0; return false }
        return true
    }

    /// Waits (up to `timeout` seconds, then SIGKILL) and collects the result.
    /// What the program has written to standard output so far (when captured).
    func peekStdout() -> [UInt8] { out?.snapshot() ?? [] }

    /// What the program has written to standard error so far (when captured).
    func peekStderr() -> String { String(decoding: err?.snapshot() ?? [], as: UTF8.self) }

    func finish(timeout: TimeInterval = 60) -> RunResult {
        let deadline = Date(timeIntervalSinceNow: timeout)
        var timedOut = false
        while isRunning {
            if Date() >= deadline {
                timedOut = true
                kill(pid, SIGKILL)
                let killDeadline = Date(timeIntervalSinceNow: 10)
                while isRunning && Date() < killDeadline { usleep(5_000) }
                break
            }
            usleep(2_000)
        }
        let stdout = out?.result() ?? []
        let stderr = String(decoding: err?.result() ?? [], as: UTF8.self)
        lock.lock()
        let status = reaped ?? 0
        lock.unlock()
        let signaled = status & 0x7f != 0 && status & 0x7f != 0x7f
        return RunResult(
            status: signaled ? status & 0x7f : (status >> 8) & 0xff, signaled: signaled, timedOut: timedOut,
            stdout: stdout, stderr: stderr)
    }

    deinit {
        if isRunning {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }
}

/// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34), looked up at run time because
/// the Glibc module does not import it.
private let spawnCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else {
        return nil
    }
    return unsafeBitCast(
        symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
}()

/// pipe(2) with both ends close-on-exec (pipe2 is not imported by the Glibc module).
private func cloexecPipe(_ fds: inout [Int32]) -> Int32 {
    guard pipe(&fds) == 0 else { return -1 }
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    return 0
}

/// Writing to a pipe whose reader is gone must fail with EPIPE, not kill the test process.
/// The library's Tracer installs process-wide detach handlers (SIGPIPE among them) the first
/// time one is made, leaving a signal that is already ignored alone: ignore SIGPIPE before
/// that happens (a Tracer of a pid that cannot exist installs them, then fails).
private let ignoreSIGPIPEOnce: Void = {
    _ = signal(SIGPIPE, SIG_IGN)
    _ = try? Tracer(pid: Int32.max)
    _ = signal(SIGPIPE, SIG_IGN)  // in case this library version replaces it anyway
}()

enum Tool {
    static var path: String { Fixtures.toolPath.path }

    /// Whether the tool under test carries a sanitizer's runtime (scripts/sanitize builds it
    /// so): its shadow memory and quarantine make its resident size no measure of its own use.
    static let isSanitized: Bool = {
        guard let binary = FileManager.default.contents(atPath: path) else { return false }
        return binary.range(of: Data("__asan_init".utf8)) != nil || binary.range(of: Data("__tsan_init".utf8)) != nil
    }()

    /// Runs `vmio-ptrace ARGS…` to completion (killed after `timeout` seconds).
    static func run(_ arguments: [String], timeout: TimeInterval = 60) throws -> RunResult {
        try Running(path, arguments).finish(timeout: timeout)
    }

    static func run(_ arguments: String..., timeout: TimeInterval = 60) throws -> RunResult {
        try run(arguments, timeout: timeout)
    }

    /// Runs any program to completion.
    static func runProgram(_ executable: String, _ arguments: [String], timeout: TimeInterval = 60) throws -> RunResult
    {
        try Running(executable, arguments).finish(timeout: timeout)
    }
}

/// A program with pipes on all three standard streams: lines can be written to its
/// standard input one at a time and its standard output read line by line as it
/// comes, so a test can hold a conversation with it.
final class Conversation: Sendable {
    private let program: PipedProgram

    init(_ executable: String, _ arguments: [String]) throws {
        _ = signal(SIGPIPE, SIG_IGN)  // a write to a program that exited fails with EPIPE instead
        program = try PipedProgram(URL(fileURLWithPath: executable), arguments, name: executable)
    }

    var process: Process { program.process }
    private var input: FileHandle { program.input }

    /// Writes one line to the program's standard input.
    func send(_ line: String) throws {
        try input.write(contentsOf: Data((line + "\n").utf8))
    }

    /// The next line of standard output, waiting up to `timeout` seconds; nil at end of
    /// file or when time ran out.
    func nextLine(timeout: TimeInterval = 10) -> String? {
        guard case .line(let line) = program.output.next(timeout: timeout) else { return nil }
        return line
    }

    /// The next line parsed as a JSON object.
    func nextObject(timeout: TimeInterval = 10) -> [String: Any]? {
        guard let line = nextLine(timeout: timeout) else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }

    /// Every line not taken yet, once standard output has closed.
    func remainingLines(timeout: TimeInterval = 10) -> [String] {
        var lines: [String] = []
        while let line = nextLine(timeout: timeout) { lines.append(line) }
        return lines
    }

    func closeInput() { try? input.close() }

    var isRunning: Bool { process.isRunning }

    /// Waits for the program to exit (SIGKILL after `timeout` seconds); its exit status.
    @discardableResult
    func waitExit(timeout: TimeInterval = 30) -> Int32 {
        if !waitUntil(timeout: timeout, { !process.isRunning }) {
            kill(process.processIdentifier, SIGKILL)
            waitUntil(timeout: 10) { !process.isRunning }
            return -1
        }
        return process.terminationStatus
    }

    /// Standard error, once it has closed (everything that holds it open has exited).
    var stderr: String {
        program.errors.waitForEOF(timeout: 10)
        let lines = program.errors.snapshot()
        return lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
    }

    deinit {
        closeInput()
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
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

/// Every thread of the process is running (or sleeping), none is stopped (by a tracer or by
/// job control), and nobody traces any of them. (The process's own status line is that of
/// its main thread only: a tool that let the main thread go but left another stopped would
/// pass a check of it alone.)
func isFreeRunning(_ pid: Int32) -> Bool {
    let status = procStatus(pid)
    guard let state = status["State"], !state.hasPrefix("t"), !state.hasPrefix("T"), status["TracerPid"] == "0"
    else { return false }
    let states = threadStates(pid), tracers = threadTracers(pid)
    return !states.isEmpty && states.values.allSatisfy { $0 != "t" && $0 != "T" }
        && tracers.values.allSatisfy { $0 == "0" }
}

/// Writes `bytes` at `address` of `pid` through /proc/PID/mem: the test's own path into a
/// target's memory (independent of the tool under test). True when every byte was written.
@discardableResult
func writeProcMem(_ pid: Int32, _ address: UInt64, _ bytes: [UInt8]) -> Bool {
    let fd = open("/proc/\(pid)/mem", O_RDWR | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes {
            pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(Int64(bitPattern: address + UInt64(done))))
        }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return false }
        done += n
    }
    return true
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
