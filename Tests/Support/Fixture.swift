// Test support: launches the fixture processes (fixtures/*/main.c, built by
// `swift build` as vmio-fixture-NAME next to the test bundle) and talks to them
// over stdin/stdout. See fixtures/README.md for what each fixture prints.

import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The fixture programs; the raw value is the NAME in `vmio-fixture-NAME`.
public enum FixtureKind: String, Sendable, CaseIterable {
    case holder
    case manyMaps = "many-maps"
    case threads
    case unmapper
    case exiter
    /// A big buffer (word i == i) in a process that execs /bin/sleep on request.
    case execer
    case deepStack = "deep-stack"
    /// Blocks in vfork (D), turns undumpable, parents a zombie, on request.
    case states
    case truncated
    /// Threads blocked in a signal handler, in a self-looping frame, on an unreadable stack,
    /// and in anonymous code: the unusual frames and ends of a backtrace.
    case frames
    /// Its own code has CFI only in .debug_frame and no frame pointer.
    case debugFrame = "debug-frame"
    /// A C++ main thread under functions with mangled names.
    case cxxNames = "cxx-names"
    /// A split heap, anonymous memory, files sharing a basename, a file mapped twice.
    case regions
    /// A file-backed shared page, an anonymous shared one, a MADV_DONTDUMP one, and a big
    /// buffer of zeros: what a core's filter sorts.
    case coreMaps = "core-maps"
    /// Threads that keep mapping and unmapping regions and starting short-lived threads.
    case mappingChurn = "mapping-churn"
    /// Changes known bytes on command: a counter, a moving string, a rewritten buffer, a
    /// region that grows, one that moves (diff, scan and monitor tests).
    case changer

    /// The executable's file name, e.g. `vmio-fixture-many-maps`.
    public var executableName: String { "vmio-fixture-\(rawValue)" }
}

public enum FixtureError: Error, CustomStringConvertible {
    /// The fixture binary is not in the build directory (run `swift build` first).
    case binaryNotFound(path: String)
    /// No line arrived in time. `output` is what the fixture printed so far (for launch).
    case timeout(FixtureKind, waitingFor: String, output: [String])
    /// The fixture's stdout closed (it exited or crashed) while we waited for a line.
    case exited(FixtureKind, waitingFor: String, output: [String], stderr: String)
    /// Writing to the fixture's stdin failed (errno), usually because it has exited.
    case writeFailed(FixtureKind, errno: Int32)

    public var description: String {
        switch self {
        case .binaryNotFound(let path):
            return "fixture binary not found at \(path); run `swift build` (or set VMIO_BUILD_DIR)"
        case .timeout(let kind, let what, let output):
            return "vmio-fixture-\(kind.rawValue): timed out waiting for \(what); output so far: \(output)"
        case .exited(let kind, let what, let output, let stderr):
            return "vmio-fixture-\(kind.rawValue): stdout closed while waiting for \(what); "
                + "output: \(output); stderr: \(stderr)"
        case .writeFailed(let kind, let err):
            return "vmio-fixture-\(kind.rawValue): writing stdin failed: \(String(cString: strerror(err)))"
        }
    }
}

/// write(2); a free function because FixtureProcess.write(_:) shadows the name inside the class.
private func posixWrite(_ fd: Int32, _ buf: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buf, count)
}

/// Reads a file descriptor on a background thread and queues its lines, so
/// waiters can take the next line with a timeout instead of blocking forever.
final class LineReader: @unchecked Sendable {
    enum Next { case line(String), eof, timeout }

    private let handle: FileHandle  // kept alive (and its fd open) while reading
    private let cond = NSCondition()
    private var queue: [String] = []
    private var eof = false

    init(_ handle: FileHandle, name: String) {
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
            while let nl = pending[start...].firstIndex(of: 10) {
                lines.append(String(decoding: pending[start..<nl], as: UTF8.self))
                start = nl + 1
            }
            pending.removeFirst(start)
            cond.lock()
            queue.append(contentsOf: lines)
            cond.broadcast()
            cond.unlock()
        }
        cond.lock()
        if !pending.isEmpty { queue.append(String(decoding: pending, as: UTF8.self)) }
        eof = true
        cond.broadcast()
        cond.unlock()
    }

    /// Takes the next line, waiting up to `timeout` seconds.
    func next(timeout: TimeInterval) -> Next {
        let deadline = Date(timeIntervalSinceNow: timeout)
        cond.lock()
        defer { cond.unlock() }
        while queue.isEmpty && !eof {
            if !cond.wait(until: deadline) { break }
        }
        if !queue.isEmpty { return .line(queue.removeFirst()) }
        return eof ? .eof : .timeout
    }

    /// All queued (not yet taken) lines, without taking them.
    func snapshot() -> [String] {
        cond.lock()
        defer { cond.unlock() }
        return queue
    }

    /// Waits up to `timeout` seconds for end of file.
    func waitForEOF(timeout: TimeInterval) {
        let deadline = Date(timeIntervalSinceNow: timeout)
        cond.lock()
        defer { cond.unlock() }
        while !eof {
            if !cond.wait(until: deadline) { break }
        }
    }
}

/// A running fixture. Everything it printed before `ready` is in `facts`.
/// Terminated (stdin closed, then SIGKILL if needed) by `terminate()` or deinit.
public final class FixtureProcess: @unchecked Sendable {
    public let kind: FixtureKind
    public let pid: Int32
    /// One entry a fact line: `"buf" -> ["0x7f...", "65536"]`, `"pid" -> ["1234"]`.
    /// `thread TID NAME` lines are collected in order as `"TID NAME"` under `"thread"`.
    public let facts: [String: [String]]
    /// The lines printed before `ready`, verbatim.
    public let factLines: [String]

    private let process: Process
    private let stdinHandle: FileHandle
    private let stdout: LineReader
    private let stderr: LineReader
    private let ioLock = NSLock()  // one send at a time
    private let stateLock = NSLock()  // guards the two flags below
    private var stdinClosed = false
    private var terminated = false

    fileprivate init(
        kind: FixtureKind, process: Process, stdin: FileHandle, stdout: LineReader, stderr: LineReader,
        factLines: [String]
    ) {
        self.kind = kind
        self.process = process
        self.stdinHandle = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.factLines = factLines
        self.pid = process.processIdentifier
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

    /// `facts[key]![0]` parsed as hex (`0x...`). Stops the tests with a clear message if absent.
    public func address(_ key: String) -> UInt64 {
        guard let text = facts[key]?.first, let value = Self.parse(text) else {
            preconditionFailure("vmio-fixture-\(kind.rawValue): no address fact '\(key)' in \(factLines)")
        }
        return value
    }

    /// `facts[key]![index]` as a number (hex if it starts with `0x`, else decimal).
    /// Without an index: the fact's last value, so `number("buf")` is buf's size and
    /// `number("count")` / `number("pid")` the single value. Stops the tests if absent.
    public func number(_ key: String, _ index: Int? = nil) -> UInt64 {
        let values = facts[key] ?? []
        let i = index ?? (values.count - 1)
        guard values.indices.contains(i), let value = Self.parse(values[i]) else {
            preconditionFailure(
                "vmio-fixture-\(kind.rawValue): no number at index \(i) of fact '\(key)' in \(factLines)")
        }
        return value
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
        stateLock.lock()
        let closed = stdinClosed
        stateLock.unlock()
        if closed { throw FixtureError.writeFailed(kind, errno: EPIPE) }
        let bytes = Array((line + "\n").utf8)
        var done = 0
        let fd = stdinHandle.fileDescriptor
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { posixWrite(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FixtureError.writeFailed(kind, errno: errno)
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
                kind, waitingFor: what, output: [], stderr: stderr.snapshot().joined(separator: "\n"))
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
        stateLock.lock()
        if terminated {
            stateLock.unlock()
            return
        }
        terminated = true
        stdinClosed = true
        stateLock.unlock()
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

public enum Fixtures {
    /// Where the fixture binaries and `vmio-ptrace` are: `$VMIO_BUILD_DIR` if set, else the
    /// directory of the running test binary (`/proc/self/exe`, resolved), or the nearest
    /// ancestor of it that holds `vmio-fixture-holder`.
    public static var buildDirectory: URL { cachedBuildDirectory }

    /// The `vmio-ptrace` tool in the build directory.
    public static var toolPath: URL { buildDirectory.appendingPathComponent("vmio-ptrace") }

    /// The path of a fixture's binary: in `$VMIO_FIXTURE_DIR` if set (scripts/sanitize points
    /// it at fixtures built without a sanitizer: an ASan/TSan target maps terabytes of shadow
    /// memory that whole-process dumps and searches would walk), else in the build directory.
    public static func path(of kind: FixtureKind) -> URL {
        if let dir = ProcessInfo.processInfo.environment["VMIO_FIXTURE_DIR"], !dir.isEmpty {
            return URL(fileURLWithPath: dir, isDirectory: true).appendingPathComponent(kind.executableName)
        }
        return buildDirectory.appendingPathComponent(kind.executableName)
    }

    /// Starts `vmio-fixture-NAME`, reads its lines up to `ready` (10 s timeout) and parses
    /// them into facts. If that fails the process is killed and the error thrown.
    ///
    /// `executable` runs another binary that speaks `kind`'s protocol (e.g. a 32-bit holder
    /// built by a test); `wrapper` runs it under another program (`unshare …`, `setpriv …`),
    /// which must exec it or wait for it (then ``FixtureProcess/pid`` is the wrapper's pid).
    public static func launch(
        _ kind: FixtureKind, arguments: [String] = [], executable: URL? = nil, wrapper: [String] = []
    ) throws -> FixtureProcess {
        _ = ignoreSIGPIPE
        let binary = executable ?? path(of: kind)
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw FixtureError.binaryNotFound(path: binary.path)
        }
        let process = Process()
        if let program = wrapper.first {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = Array(wrapper.dropFirst()) + [binary.path] + arguments
        } else {
            process.executableURL = binary
            process.arguments = arguments
        }
        let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
        process.standardInput = inPipe
        process.standardOutput = outPipe
        process.standardError = errPipe
        try process.run()
        // Our copies of the child's ends must be closed, or we would never see EOF.
        try? inPipe.fileHandleForReading.close()
        try? outPipe.fileHandleForWriting.close()
        try? errPipe.fileHandleForWriting.close()
        let out = LineReader(outPipe.fileHandleForReading, name: "\(kind.executableName) stdout")
        let err = LineReader(errPipe.fileHandleForReading, name: "\(kind.executableName) stderr")

        var lines: [String] = []
        let deadline = Date(timeIntervalSinceNow: 10)
        while true {
            switch out.next(timeout: max(0, deadline.timeIntervalSinceNow)) {
            case .line("ready"):
                return FixtureProcess(
                    kind: kind, process: process, stdin: inPipe.fileHandleForWriting, stdout: out, stderr: err,
                    factLines: lines)
            case .line(let line):
                lines.append(line)
            case .timeout:
                kill(process.processIdentifier, SIGKILL)
                waitGone(process)
                throw FixtureError.timeout(kind, waitingFor: "ready", output: lines)
            case .eof:
                waitGone(process)
                err.waitForEOF(timeout: 1)
                throw FixtureError.exited(
                    kind, waitingFor: "ready", output: lines, stderr: err.snapshot().joined(separator: "\n"))
            }
        }
    }

    /// Waits (bounded) for a process that is exiting or was killed to be reaped.
    private static func waitGone(_ process: Process) {
        let deadline = Date(timeIntervalSinceNow: 10)
        while process.isRunning && Date() < deadline { usleep(5_000) }
    }

    private static let cachedBuildDirectory: URL = findBuildDirectory()

    /// A fixture that has exited makes writes to its stdin raise SIGPIPE, which would
    /// kill the test process; ignore it so the write fails with EPIPE instead.
    private static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    private static func findBuildDirectory() -> URL {
        if let env = ProcessInfo.processInfo.environment["VMIO_BUILD_DIR"], !env.isEmpty {
            return URL(fileURLWithPath: env, isDirectory: true)
        }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let start = exe.deletingLastPathComponent()
        var dir = start
        while true {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("vmio-fixture-holder").path) {
                return dir
            }
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { break }
            dir = parent
        }
        return start  // launch() then reports the missing binary with this path
    }
}

/// The whole of a /proc file, read until EOF (procfs files report size 0, and
/// `String(contentsOfFile:)` may stop early on them); nil if it cannot be opened.
public func readProcFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { return nil }
        if n == 0 { break }
        data.append(contentsOf: chunk[0..<n])
    }
    return String(decoding: data, as: UTF8.self)
}

/// /proc/PID/status as `key -> value` (e.g. `"State" -> "S (sleeping)"`, `"TracerPid" -> "0"`),
/// values trimmed. Empty if the process does not exist.
public func procStatus(_ pid: Int32) -> [String: String] {
    guard let text = readProcFile("/proc/\(pid)/status") else { return [:] }
    var result: [String: String] = [:]
    for line in text.split(separator: "\n") {
        guard let colon = line.firstIndex(of: ":") else { continue }
        result[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return result
}

/// One line of /proc/PID/maps.
public struct ProcMapsLine: Sendable, Equatable {
    public var start: UInt64
    public var end: UInt64
    public var perms: String  // e.g. "r-xp"
    public var offset: UInt64
    public var path: String  // "" for anonymous, "[heap]", a file path, ...

    public func contains(_ address: UInt64) -> Bool { start <= address && address < end }
}

/// /proc/PID/maps parsed; empty if the process does not exist.
public func procMapsLines(_ pid: Int32) -> [ProcMapsLine] {
    guard let text = readProcFile("/proc/\(pid)/maps") else { return [] }
    return text.split(separator: "\n").compactMap { line in
        let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
        guard fields.count >= 5 else { return nil }
        let range = fields[0].split(separator: "-")
        guard range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16),
            let offset = UInt64(fields[2], radix: 16)
        else { return nil }
        let path = fields.count > 5 ? fields[5].trimmingCharacters(in: .whitespaces) : ""
        return ProcMapsLine(start: start, end: end, perms: String(fields[1]), offset: offset, path: path)
    }
}
