import SystemPackage
import VmIO

/// What a user wants to do to a target, for the doctor to judge.
public enum DoctorOperation: String, CaseIterable, Sendable {
    /// Read its memory (`process_vm_readv`, else `/proc/PID/mem`).
    case read
    /// Write its writable mappings.
    case write
    /// Stop it: attach with `PTRACE_SEIZE` (`--stop`, sessions, backtraces, registers).
    case stop
    /// Write mappings it cannot write itself (`write --force`, through `/proc/PID/mem`).
    case forceWrite = "force-write"

    /// The operation in words: "read its memory".
    public var phrase: String {
        switch self {
        case .read: "read its memory"
        case .write: "write its memory"
        case .stop: "stop it (attach with ptrace)"
        case .forceWrite: "write its read-only mappings (--force)"
        }
    }

    static let all: Set<DoctorOperation> = Set(allCases)
}

/// One check of the doctor: what it found, and — for a problem — the one fix.
public struct DoctorCheck: Sendable {
    /// The checks, in the order they are made (and reported).
    public enum Name: String, CaseIterable, Sendable {
        /// `hidepid`: whether /proc shows the target; `target`: whether the process exists, and its state;
        /// `caller`: whether this tool's ids and capabilities may access it.
        case hidepid, target, caller
        /// Yama's `kernel.yama.ptrace_scope`.
        case ptraceScope = "ptrace_scope"
        /// `dumpable`: the target's dumpable flag; `tracer`: whether another tracer holds it; `maps`:
        /// whether its maps can be read; `seccomp`: whether a seccomp filter on this tool refuses the calls it needs.
        case dumpable, tracer, maps, seccomp
        /// Whether `process_vm_readv(2)` reads the target.
        case processVMReadv = "process_vm_readv"
        /// Whether `/proc/PID/mem` reads the target.
        case procMem = "proc_mem"
        /// Whether `/proc/PID/mem` writes the target (read-only pages through the kernel's FOLL_FORCE).
        case procMemWrite = "proc_mem_write"
        /// `namespace`: whether the target is in this tool's pid namespace; `abi`: its architecture,
        /// word size and byte order (from its ELF header).
        case namespace, abi
    }

    /// The outcome of a check.
    public enum Status: String, Sendable {
        /// Made, and nothing found in the way.
        case ok
        /// Made, and something found in the way (``DoctorCheck/fix`` says what to do).
        case problem
        /// Not made: what it needs could not be learned (``DoctorCheck/detail`` says why).
        case skipped
    }

    /// Which check this is.
    public let id: Name
    /// A short, stable name: ``Name``'s raw value (`target`, `process_vm_readv`…).
    public var name: String { id.rawValue }
    /// Whether it found a problem, or could not be made.
    public let status: Status
    /// One line: what was found.
    public let detail: String
    /// The one thing that would remove the problem (nil unless a problem).
    public let fix: String?
    /// The operations this problem prevents (empty unless a problem).
    public let blocks: Set<DoctorOperation>

    /// A check's finding.
    public init(
        _ id: Name, status: Status, detail: String, fix: String? = nil, blocks: Set<DoctorOperation> = []
    ) {
        self.id = id
        self.status = status
        self.detail = detail
        self.fix = status == .problem ? fix : nil
        self.blocks = status == .problem ? blocks : []
    }

    static func ok(_ id: Name, _ detail: String) -> DoctorCheck {
        DoctorCheck(id, status: .ok, detail: detail)
    }

    static func skipped(_ id: Name, _ detail: String) -> DoctorCheck {
        DoctorCheck(id, status: .skipped, detail: detail)
    }

    static func problem(_ id: Name, _ detail: String, fix: String, blocks: Set<DoctorOperation>) -> DoctorCheck {
        DoctorCheck(id, status: .problem, detail: detail, fix: fix, blocks: blocks)
    }
}

/// Everything the doctor found about a target, for one operation.
public struct DoctorReport: Sendable {
    /// The process examined.
    public let pid: Int32
    /// The operation the checks were made for.
    public let operation: DoctorOperation
    /// In the order they were made; the first problem that blocks ``operation`` is the one to fix.
    public let checks: [DoctorCheck]
    /// `NSpid` of `/proc/PID/status`: the pid in each pid namespace, outermost first (just
    /// `[pid]` for a process in this tool's namespace); empty when unknown.
    public let nspid: [Int32]
    /// The target's ABI (nil when the target is gone).
    public let abi: TargetABI?
    /// What the target was doing.
    public let state: RunState
    /// The process does not exist (status 4), as opposed to a problem of permission (3).
    public let targetGone: Bool

    /// The first problem that prevents ``operation``.
    public var blocking: DoctorCheck? {
        checks.first { $0.status == .problem && $0.blocks.contains(operation) }
    }
    /// Nothing found prevents ``operation``.
    public var ok: Bool { blocking == nil }
    /// The one fix that would make ``operation`` work (nil when nothing blocks it).
    public var fix: String? { blocking?.fix }

    /// The reason for a permission error: the failing check, what it found, and its fix.
    public var reason: String? {
        guard
            let c = blocking ?? checks.first(where: { $0.status == .problem && !$0.blocks.isEmpty })
                ?? checks.first(where: { $0.status == .problem })
        else {
            return nil
        }
        return "\(c.name): \(c.detail); fix: \(c.fix ?? "none known")"
    }
}

/// Why an operation on a target would be refused, and the one fix: the caller's uid and
/// `CAP_SYS_PTRACE`, `kernel.yama.ptrace_scope`, the target's owner, dumpable flag and
/// tracer, whether its maps can be read, the caller's seccomp mode, `hidepid` on `/proc`,
/// whether `/proc/PID/mem` may be written (`proc_mem.force_override`), plus probes of
/// `process_vm_readv` and `/proc/PID/mem` on the target itself (each reads one byte;
/// nothing is written). Every permission error of the tool carries the first failing check
/// (Classification.swift).
///
/// The facts are gathered once (``DoctorFacts``); each check is a pure function of them
/// (DoctorChecks.swift).
public enum Doctor {
    /// Runs every check against `pid` for `operation`.
    public static func examine(pid: Int32, for operation: DoctorOperation = .stop) -> DoctorReport {
        report(DoctorFacts.gather(pid: pid), for: operation)
    }

    /// The checks of `facts`, for `operation`: pure.
    public static func report(_ facts: DoctorFacts, for operation: DoctorOperation) -> DoctorReport {
        let nspid = facts.status?["NSpid"].map { parseIDs($0).map { Int32(bitPattern: $0) } } ?? []
        return DoctorReport(
            pid: facts.pid, operation: operation, checks: checks(facts), nspid: nspid,
            abi: facts.isLive ? facts.abi ?? .host : nil, state: facts.state,
            targetGone: !facts.exists || facts.state.kind == .zombie)
    }

    // MARK: pieces (pure where possible, for the tests)

    /// `EPERM (Operation not permitted)`.
    public static func errnoText(_ err: Int32) -> String {
        let names: [Errno: String] = [
            .notPermitted: "EPERM", .noSuchFileOrDirectory: "ENOENT", .noSuchProcess: "ESRCH", .interrupted: "EINTR",
            .ioError: "EIO", .permissionDenied: "EACCES", .badAddress: "EFAULT", .invalidArgument: "EINVAL",
            .noFunction: "ENOSYS", .resourceBusy: "EBUSY", .resourceTemporarilyUnavailable: "EAGAIN",
        ]
        let errno = Errno(rawValue: err)
        return "\(names[errno] ?? "errno \(err)") (\(errno))"
    }

    static func errnoText(_ errno: Errno) -> String { errnoText(errno.rawValue) }

    /// What each value of `kernel.yama.ptrace_scope` allows.
    public static func ptraceScopeMeaning(_ scope: Int) -> String {
        switch scope {
        case 0: "classic ptrace permissions: a process may attach to any process of the same uid"
        case 1:
            "restricted ptrace: without CAP_SYS_PTRACE only an ancestor of the target (or a process it named "
                + "with PR_SET_PTRACER) may attach"
        case 2: "admin-only attach: only a process with CAP_SYS_PTRACE may attach"
        case 3:
            "no attach: ptrace is disabled for everyone, root included, and the value cannot be lowered until "
                + "the next reboot"
        default: "an unknown value"
        }
    }

    /// The super-block options of the mount on `/proc` (the last one, when mounts are
    /// stacked), from `/proc/self/mountinfo`; nil when there is none.
    public static func procMountOptions(mountinfo: String) -> [String]? {
        var found: [String]?
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPER-OPTIONS
        for line in mountinfo.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 6, let dash = fields.firstIndex(of: "-"), dash >= 6, fields.count > dash + 1,
                fields[4] == "/proc", fields[dash + 1] == "proc"
            else { continue }
            var options = fields[5].split(separator: ",").map(String.init)
            if fields.count > dash + 3 { options += fields[dash + 3].split(separator: ",").map(String.init) }
            found = options
        }
        return found
    }

    /// `hidepid=` (as written: `0`…`4`, `off`, `noaccess`, `invisible`, `ptraceable`) and
    /// `gid=` of a /proc mount's options; nil when hidepid is not set.
    public static func hidepid(options: [String]) -> (level: String, gid: UInt32?)? {
        guard let h = options.last(where: { $0.hasPrefix("hidepid=") }) else { return nil }
        let gid = options.last(where: { $0.hasPrefix("gid=") }).flatMap { UInt32($0.dropFirst(4)) }
        return (String(h.dropFirst("hidepid=".count)), gid)
    }

    /// `proc_mem.force_override=` of a kernel command line; nil when absent.
    public static func forceOverride(cmdline: String) -> String? {
        cmdline.split(whereSeparator: { $0 == " " || $0 == "\n" }).last { $0.hasPrefix("proc_mem.force_override=") }
            .map { String($0.dropFirst("proc_mem.force_override=".count)) }
    }

    /// The `proc_mem.force_override` default a kernel config selects (`always`, `ptrace`,
    /// `never`); nil when the config says nothing about it.
    public static func forceOverride(kernelConfig: String) -> String? {
        for line in kernelConfig.split(separator: "\n") {
            switch line {
            case "CONFIG_PROC_MEM_ALWAYS_FORCE=y": return "always"
            case "CONFIG_PROC_MEM_FORCE_PTRACE=y": return "ptrace"
            case "CONFIG_PROC_MEM_NO_FORCE=y": return "never"
            default: continue
            }
        }
        return nil
    }

    /// `major.minor` of a kernel release string (`6.18.44-fc` → (6, 18)).
    public static func kernelVersion(_ release: String) -> (Int, Int)? {
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        return parts.count == 2 ? (parts[0], parts[1]) : nil
    }

    /// The numbers of a tab- or space-separated status field (`Uid`, `Gid`, `NSpid`).
    public static func parseIDs(_ field: String) -> [UInt32] {
        field.split(whereSeparator: { $0 == "\t" || $0 == " " }).compactMap { UInt32($0) }
    }

    /// `Seccomp:` of a status (0 none, 1 strict, 2 filter).
    public static func seccompMode(status: [String: String]) -> Int? {
        status["Seccomp"].flatMap { Int($0) }
    }

}
