// The one fixture client: the tests, `vmio-ptrace demo` and the benchmarks start the fixture
// programs (fixtures/*/main.c, built by `swift build` as vmio-fixture-NAME next to the tool)
// through `Fixtures.launch` and talk to them through `FixtureProcess` (ARCHITECTURE.md).

import Foundation

#if canImport(Glibc)
    import Glibc
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
    /// Threads that write one variable and call one function at known places (breakpoints, watchpoints).
    case traps
    /// A process whose main thread has exited (a zombie) while a second thread runs on.
    case leaderExit = "leader-exit"
    /// MiB of pseudo-random bytes with one 8-byte needle (the benchmark's target).
    case random

    /// The executable's file name, e.g. `vmio-fixture-many-maps`.
    public var executableName: String { "vmio-fixture-\(rawValue)" }
}

public enum Fixtures {
    /// Where the fixture binaries and `vmio-ptrace` are: `$VMIO_BUILD_DIR` if set, else the
    /// directory of the running binary (`/proc/self/exe`, resolved), or the nearest
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

    /// Starts `vmio-fixture-NAME`, reads its lines up to `ready` (for `readyTimeout` seconds)
    /// and parses them into facts. If that fails the process is killed and the error thrown.
    /// The timeout is generous: in CI's sanitizer suites a fixture filling 1 GiB once took
    /// more than 10 s to say `ready` (it takes under a second on its own).
    ///
    /// `executable` runs another binary that speaks `kind`'s protocol (e.g. a 32-bit holder
    /// built by a test, or the demo's installed holder); `wrapper` runs it under another
    /// program (`unshare …`, `setpriv …`), which must exec it or wait for it (then
    /// ``FixtureProcess/pid`` is the wrapper's pid).
    public static func launch(
        _ kind: FixtureKind, arguments: [String] = [], executable: URL? = nil, wrapper: [String] = [],
        readyTimeout: TimeInterval = 60
    ) throws -> FixtureProcess {
        _ = ignoreSIGPIPE
        let binary = executable ?? path(of: kind)
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw FixtureError.binaryNotFound(path: binary.path)
        }
        let started: PipedProgram
        if let program = wrapper.first {
            started = try PipedProgram(
                URL(fileURLWithPath: program), Array(wrapper.dropFirst()) + [binary.path] + arguments,
                name: kind.executableName)
        } else {
            started = try PipedProgram(binary, arguments, name: kind.executableName)
        }
        let (process, out, err) = (started.process, started.output, started.errors)

        var lines: [String] = []
        let deadline = Date(timeIntervalSinceNow: readyTimeout)
        while true {
            switch out.next(timeout: max(0, deadline.timeIntervalSinceNow)) {
            case .line("ready"):
                return FixtureProcess(kind: kind, program: started, factLines: lines)
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
    /// kill the caller; ignore it so the write fails with EPIPE instead.
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
