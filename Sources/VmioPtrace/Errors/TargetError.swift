import SystemPackage
import VmIO

/// The error of the Linux layer: what went wrong with a target process (or a file a
/// command reads or writes). Every throwing function of VmioPtrace throws it, typed.
/// ``kind`` sorts it for a caller that maps errors to exit statuses.
public enum TargetError: Error, Hashable, Sendable, CustomStringConvertible {
    /// No process with this pid exists.
    case noSuchProcess(pid: Int32)
    /// The process has exited and its parent has not reaped it: nothing of it is left.
    case zombie(pid: Int32, command: String, parent: Int32, parentCommand: String)
    /// A kernel thread: it has no user memory, and the kernel lets no process trace it.
    case kernelThread(pid: Int32, command: String)
    /// A thread that is not (or no longer) part of its process.
    case noSuchThread(pid: Int32, tid: Int32)
    /// The kernel refused `operation`; `reason` says why, and what would fix it.
    case permissionDenied(pid: Int32, operation: AccessOperation, reason: String)
    /// Another tracer holds the process (`TracerPid` in `/proc/PID/status`).
    case alreadyTraced(pid: Int32, tracerPid: Int32, tracerName: String)
    /// A thread did not reach a ptrace stop in time.
    case attachTimeout(pid: Int32, tid: Int32, state: String)
    /// A system call failed in a way none of the above covers.
    case system(call: String, errno: Errno)
    /// A model error (bad range, address expression, owner conflict…).
    case model(VmIoError)
    /// A transfer that cannot report a partial result stopped early (a dump's region, a search).
    case transferStopped(PartialCopy)
    /// A dump directory or manifest that cannot be used.
    case dump(DumpError)
    /// A breakpoint or watchpoint that cannot be set or used (Traps/), in words.
    case trap(String)
    /// A file of the tool's own (an output file, a dump's data file) that cannot be used.
    case file(path: String, FileProblem)
    /// A scan state that cannot be used for this process, or a filter it cannot take.
    case scan(ScanProblem)

    /// What kind of failure this is, for a caller that maps errors to exit statuses.
    public enum Kind: String, Hashable, Sendable {
        /// Bad input found at run time (an address in no mapping, a bad manifest, a timed-out attach…).
        case badInput
        /// A transfer stopped at a fault.
        case partialCopy
        /// The kernel refuses it (a permission, a kernel thread).
        case permission
        /// The target is gone (no such process, a zombie, exited mid-way).
        case targetGone
    }

    /// How the error sorts: bad input, a partial copy, a permission refused, or the target gone (the command line's
    /// exit status follows from it).
    public var kind: Kind {
        switch self {
        case .noSuchProcess, .zombie: .targetGone
        case .kernelThread, .permissionDenied, .alreadyTraced: .permission
        case .noSuchThread, .attachTimeout, .system, .dump, .file, .scan, .trap: .badInput
        case .model(let error):
            if case .partialCopy(let stop) = error { Self.kind(of: stop) } else { .badInput }
        case .transferStopped(let stop): Self.kind(of: stop)
        }
    }

    /// The kind of a transfer stopped by `stop`.
    public static func kind(of stop: PartialCopy) -> Kind {
        switch stop.kind {
        case .targetGone: .targetGone
        case .permission: .permission
        default: .partialCopy
        }
    }

    public var description: String {
        switch self {
        case .noSuchProcess(let pid): "no such process: \(pid)"
        case .zombie(let pid, let command, let parent, let parentCommand):
            "pid \(pid) (\(command)) is a zombie: it has exited, and its parent pid \(parent) (\(parentCommand)) "
                + "has not reaped it; nothing of it is left to read or stop"
        case .kernelThread(let pid, let command):
            "pid \(pid) (\(command)) is a kernel thread: it has no user memory, and the kernel lets no process "
                + "trace it"
        case .noSuchThread(let pid, let tid): "pid \(pid) has no thread \(tid)"
        case .permissionDenied(let pid, let op, let reason): "permission denied to \(op) pid \(pid): \(reason)"
        case .alreadyTraced(let pid, let tracer, let name):
            "pid \(pid) is already traced by pid \(tracer) (\(name)); detach that tracer first"
        case .attachTimeout(let pid, let tid, let state):
            "thread \(tid) of pid \(pid) did not stop in time (state \(state)); every thread was let go as it was"
        case .system(let call, let errno): "\(call) failed: \(errno)"
        case .model(let e): e.description
        case .transferStopped(let stop): stop.description
        case .dump(let e): e.description
        case .file(let path, let problem): problem.message(path: path)
        case .scan(let problem): problem.description
        case .trap(let message): message
        }
    }
}

/// What the tool tried to do when the kernel refused it (the words of a permission error).
public enum AccessOperation: Hashable, Sendable, CustomStringConvertible {
    /// Reading `/proc/PID/maps`.
    case readMaps
    /// Reading `/proc/PID/smaps`.
    case readSmaps
    /// Listing `/proc/PID/task`.
    case listThreads
    /// `PTRACE_SEIZE`.
    case attach
    /// Opening `/proc/PID/mem` (for writing: `write --force`).
    case openMemory(pid: Int32, writable: Bool)
    /// Writing a mapping the target cannot write.
    case write

    public var description: String {
        switch self {
        case .readMaps: "read the maps of"
        case .readSmaps: "read the smaps of"
        case .listThreads: "list the threads of"
        case .attach: "attach to"
        case .openMemory(let pid, _): "open /proc/\(pid)/mem of"
        case .write: "write"
        }
    }

    /// The doctor's operation whose checks explain a refusal of this one.
    var doctorOperation: DoctorOperation {
        switch self {
        case .readMaps, .readSmaps, .listThreads: .read
        case .attach: .stop
        case .openMemory(_, let writable): writable ? .forceWrite : .read
        case .write: .write
        }
    }
}

/// Why a file of the tool's own cannot be used.
public enum FileProblem: Hashable, Sendable {
    /// It exists, and replacing it was not asked for.
    case exists
    /// It is a directory.
    case isDirectory
    /// It is a symbolic link where the real thing is needed.
    case isSymbolicLink
    /// It exists and is not a directory.
    case notADirectory
    /// It is not a regular file.
    case notARegularFile
    /// It is shorter than the region it holds.
    case tooShort
    /// Creating it failed.
    case cannotCreate(Errno)
    /// Putting a finished file in place failed.
    case cannotFinish(Errno)
    /// Writing it failed.
    case cannotWrite(Errno)
    /// Any other failing call on it.
    case failed(Errno)

    func message(path: String) -> String {
        switch self {
        case .exists: "\(path) exists; pass --force to replace it"
        case .isDirectory: "\(path) is a directory"
        case .isSymbolicLink: "\(path): is a symbolic link; give the real directory"
        case .notADirectory: "\(path): exists and is not a directory"
        case .notARegularFile: "\(path): the data file is not a regular file"
        case .tooShort: "\(path): shorter than its region"
        case .cannotCreate(let e): "cannot create \(path): \(e)"
        case .cannotFinish(let e): "cannot finish \(path): \(e)"
        case .cannotWrite(let e): "cannot write \(path): \(e)"
        case .failed(let e): "\(path): \(e)"
        }
    }
}
