import Glibc
import VmIO

/// A thread of a target: its id and its name (`/proc/PID/task/TID/comm`).
public struct ThreadInfo: Hashable, Sendable {
    public let tid: Int32
    public let name: String
    public init(tid: Int32, name: String) {
        self.tid = tid
        self.name = name
    }
}

/// A thread that is not (or no longer) part of its process.
public struct NoSuchThread: Error, Hashable, Sendable, CustomStringConvertible {
    public let pid: Int32
    public let tid: Int32
    public init(pid: Int32, tid: Int32) {
        self.pid = pid
        self.tid = tid
    }
    public var description: String { "pid \(pid) has no thread \(tid)" }
}

extension Target {
    /// The threads of the target, sorted by tid, with their names.
    public func threadInfos() throws(TargetError) -> [ThreadInfo] {
        let tids: [Int32]
        do { tids = try ProcFS.threads(pid) } catch {
            throw Diagnose.accessError(error, pid: pid, operation: "list the threads of")
        }
        if tids.isEmpty { throw .noSuchProcess(pid: pid) }
        return tids.map { ThreadInfo(tid: $0, name: ProcFS.threadName(pid: pid, tid: $0)) }
    }

    /// Runs `body` while thread `tid` is held in a ptrace stop by the calling thread.
    ///
    /// When the whole target is already stopped (``stop(timeout:)``) the thread is used as
    /// it is. Otherwise that thread alone is seized and stopped (through ``Tracer``, so it
    /// is let go on every path, signals included) for the duration of `body`, and the other
    /// threads run on. Throws ``NoSuchThread`` when the thread is gone but the process
    /// lives, ``TargetError/noSuchProcess(pid:)`` when the process is gone.
    public func withThreadStopped<R>(_ tid: Int32, timeout: Duration? = nil, _ body: () throws -> R) throws -> R {
        if isStopped {
            guard stoppedThreads.contains(tid) else { throw gone(tid) }
            return try body()
        }
        let tracer: Tracer
        let wait = timeout ?? attachTimeout
        do { tracer = try Tracer(pid: pid, threads: [tid], timeout: wait) } catch {
            if case .noSuchProcess = error { throw gone(tid) }
            throw error
        }
        defer { tracer.detach() }
        guard tracer.threads.contains(tid) else { throw gone(tid) }
        return try body()
    }

    /// The error for a thread that could not be held: the process's, if it is gone too.
    func gone(_ tid: Int32) -> any Error {
        ProcFS.isAlive(pid) ? NoSuchThread(pid: pid, tid: tid) : TargetError.noSuchProcess(pid: pid)
    }
}

extension ProcFS {
    /// A thread's name (`/proc/PID/task/TID/comm`), or `?` when it cannot be read.
    public static func threadName(pid: Int32, tid: Int32) -> String {
        ((try? readText("/proc/\(pid)/task/\(tid)/comm")) ?? "?").trimmingCharacters(in: "\n")
    }
}
