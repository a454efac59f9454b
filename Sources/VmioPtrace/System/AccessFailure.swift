import SystemPackage
import VmIO

/// How bytes moved (or failed to move) between the tool and a target.
public enum AccessMechanism: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// `process_vm_readv(2)`: the fast path.
    case processVMReadv = "process_vm_readv"
    /// `process_vm_writev(2)`.
    case processVMWritev = "process_vm_writev"
    /// `pread(2)` on `/proc/PID/mem`.
    case pread
    /// `pwrite(2)` on `/proc/PID/mem`.
    case pwrite
    /// `PTRACE_PEEKDATA`, one word a call, only while the target is held stopped.
    case peekdata
    /// Nothing was tried: the address is in no mapping of the maps snapshot.
    case maps

    public var description: String { rawValue }

    /// Whether the mechanism writes.
    var writes: Bool { self == .processVMWritev || self == .pwrite }
}

/// What the errno of a failed memory access means: the one table from errno to fault.
/// The target's liveness and the reason for a refusal are added where the failure is
/// classified (``Classification``), once.
enum AccessFailure: Hashable, Sendable {
    /// An address that cannot be accessed: `EFAULT` (also a short count), `EIO` (how
    /// `/proc/PID/mem` reports an unmapped address).
    case fault
    /// The process, or its memory, is gone: `ESRCH` from `process_vm_*` or `/proc/PID/mem`
    /// (even while `/proc` still shows the process exiting).
    case gone
    /// The mechanism is refused here as a whole: `EPERM`, `EACCES`, `ENOSYS`.
    case refused
    /// `ESRCH` from `PTRACE_PEEKDATA`: the thread is not in a ptrace stop of this thread.
    case notStopped
    /// Anything else.
    case other

    init(_ errno: Errno, mechanism: AccessMechanism) {
        switch errno {
        case .badAddress, .ioError: self = .fault
        case .noSuchProcess: self = mechanism == .peekdata ? .notStopped : .gone
        case .notPermitted, .permissionDenied, .noFunction: self = .refused
        default: self = .other
        }
    }

    /// Whether `errno` refuses a mechanism as a whole (a reason to step down the ladder, where
    /// nothing moved), as opposed to a fault.
    static func isRefusal(_ errno: Errno) -> Bool {
        errno == .notPermitted || errno == .permissionDenied || errno == .noFunction
    }
}

/// Why one access stopped short: the errno, what it means, and the mechanism that failed.
public struct AccessStop: Hashable, Sendable {
    /// The errno of the failure.
    public let errno: Errno
    /// The mechanism that failed.
    public let mechanism: AccessMechanism
    let failure: AccessFailure

    init(_ errno: Errno, _ mechanism: AccessMechanism) {
        self.errno = errno
        self.mechanism = mechanism
        failure = AccessFailure(errno, mechanism: mechanism)
    }
}

/// Everything about one access of a target's memory: how many bytes moved from the start
/// of the request, the mechanism that moved them (or failed last), and why it stopped short.
public struct Access: Hashable, Sendable {
    /// Bytes moved from the start of the request.
    public var moved: Int
    /// The mechanism that moved them; when nothing moved, the one that failed last.
    public var mechanism: AccessMechanism
    /// Nil exactly when every byte moved.
    public var stop: AccessStop?

    /// An access that moved `moved` bytes with `mechanism`, then stopped for `stop` (nil: it moved them all).
    public init(moved: Int, mechanism: AccessMechanism, stop: AccessStop? = nil) {
        self.moved = moved
        self.mechanism = mechanism
        self.stop = stop
    }
}
