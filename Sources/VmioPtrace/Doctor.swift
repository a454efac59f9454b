import CVmio
import Glibc
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
    public enum Status: String, Sendable {
        case ok, problem
    }

    /// A short, stable name: `target`, `hidepid`, `caller`, `ptrace_scope`, `dumpable`,
    /// `tracer`, `seccomp`, `process_vm_readv`, `proc_mem`, `proc_mem_write`, `namespace`, `abi`.
    public let name: String
    public let status: Status
    /// One line: what was found.
    public let detail: String
    /// The one thing that would remove the problem (nil when ok).
    public let fix: String?
    /// The operations this problem prevents (empty when ok).
    public let blocks: Set<DoctorOperation>

    public init(name: String, status: Status, detail: String, fix: String? = nil, blocks: Set<DoctorOperation> = []) {
        self.name = name
        self.status = status
        self.detail = detail
        self.fix = fix
        self.blocks = status == .ok ? [] : blocks
    }

    static func ok(_ name: String, _ detail: String) -> DoctorCheck {
        DoctorCheck(name: name, status: .ok, detail: detail)
    }
}

/// Everything the doctor found about a target, for one operation.
public struct DoctorReport: Sendable {
    public let pid: Int32
    public let operation: DoctorOperation
    /// In the order they were made; the first problem that blocks ``operation`` is the one to fix.
    public let checks: [DoctorCheck]
    /// `NSpid` of `/proc/PID/status`: the pid in each pid namespace, outermost first (just
    /// `[pid]` for a process in this tool's namespace); empty when unknown.
    public let nspid: [Int32]
    /// The target's ABI (nil when the target is gone).
    public let abi: TargetABI?
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
/// tracer, the caller's seccomp mode, `hidepid` on `/proc`, whether `/proc/PID/mem` may be
/// written (`proc_mem.force_override`), plus probes of `process_vm_readv` and
/// `/proc/PID/mem` on the target itself (each reads one byte; nothing is written).
/// Every permission error of the tool carries the first failing check (``Diagnose``).
public enum Doctor {
    /// Runs every check against `pid` for `operation`.
    public static func examine(pid: Int32, for operation: DoctorOperation = .stop) -> DoctorReport {
        var checks: [DoctorCheck] = []
        let caller = Caller.current
        let status = try? ProcFS.status(pid)
        let exists = status != nil || kill(pid, 0) == 0 || errno == EPERM
        let state = RunState.of(pid: pid)
        let ids = TargetIDs(status: status)

        // hidepid: a process this tool may not trace looks absent under hidepid=invisible.
        let proc = (try? ProcFS.readText("/proc/self/mountinfo")).flatMap { procMountOptions(mountinfo: $0) } ?? []
        let hide = hidepid(options: proc)
        if let hide, hide.level != "off", hide.level != "0" {
            let exempt = caller.privileged || (hide.gid.map { caller.groups.contains($0) } ?? false)
            if status == nil && exists && !exempt {
                checks.append(
                    DoctorCheck(
                        name: "hidepid", status: .problem,
                        detail:
                            "/proc is mounted with hidepid=\(hide.level)\(hide.gid.map { ",gid=\($0)" } ?? ""): pid \(pid) exists but is hidden from uid \(caller.uid), because this uid may not trace it",
                        fix:
                            "run as root (sudo)\(hide.gid.map { ", or as a member of group \($0) (the gid= of /proc)" } ?? ""), or as the target's user",
                        blocks: DoctorOperation.all))
            } else {
                checks.append(
                    .ok(
                        "hidepid",
                        "/proc is mounted with hidepid=\(hide.level)\(hide.gid.map { ",gid=\($0)" } ?? ""); pid \(pid) is \(status == nil ? "not there" : "visible to this tool")\(exempt ? " (exempt)" : "")"
                    ))
            }
        } else {
            checks.append(.ok("hidepid", "/proc is mounted without hidepid: every process is visible"))
        }

        // The target itself.
        let command = ProcFS.command(pid)
        if status == nil {
            if exists {
                checks.append(
                    DoctorCheck(
                        name: "target", status: .problem,
                        detail: "pid \(pid) exists but /proc/\(pid)/status cannot be read", fix: "run as root (sudo)",
                        blocks: DoctorOperation.all))
            } else {
                checks.append(
                    DoctorCheck(
                        name: "target", status: .problem, detail: "no process \(pid)",
                        fix: "check the pid (`ps -e`); the process may have exited", blocks: DoctorOperation.all))
            }
        } else if state.kind == .zombie {
            let parent = status?["PPid"].flatMap { Int32($0) } ?? 0
            checks.append(
                DoctorCheck(
                    name: "target", status: .problem,
                    detail:
                        "pid \(pid) (\(command)) is a zombie (\(state.state)): it has exited, so it has no memory to read and no threads to stop; its parent pid \(parent) (\(ProcFS.command(parent))) has not reaped it",
                    fix:
                        "nothing of it is left to read; its parent (pid \(parent)) must reap it with wait(), or be ended so that init reaps it",
                    blocks: DoctorOperation.all))
        } else {
            var detail = "pid \(pid) (\(command)) runs as uid \(ids.uids.first.map(String.init) ?? "?")"
            if Set(ids.uids).count > 1 {
                detail += " (uids real/effective/saved/fs: \(ids.uids.map(String.init).joined(separator: "/")))"
            }
            detail += ", state \(state.state)"
            switch state.kind {
            case .jobStopped: detail += ": job-stopped; it stays stopped after vmio-ptrace lets it go"
            case .traceStopped: detail += ": in a ptrace stop of its tracer"
            default: detail += "; it runs on after vmio-ptrace lets it go"
            }
            checks.append(.ok("target", detail))
        }

        // The caller's credentials against the target's (the kernel's __ptrace_may_access).
        let capText = caller.privileged ? "with CAP_SYS_PTRACE effective" : "without CAP_SYS_PTRACE"
        let idsText =
            (caller.privileged ? "" : "not privileged: ")
            + "this tool runs as uid \(caller.uid) (euid \(caller.euid)) \(capText)"
        if status == nil {
            checks.append(DoctorCheck(name: "caller", status: .ok, detail: idsText + "; the target's ids are unknown"))
        } else if caller.privileged {
            checks.append(.ok("caller", idsText + ": it may access any process"))
        } else if ids.uids.allSatisfy({ $0 == caller.uid }) && ids.gids.allSatisfy({ $0 == caller.gid }) {
            checks.append(.ok("caller", idsText + "; the target's uids and gids are all \(caller.uid)/\(caller.gid)"))
        } else {
            let owner = ids.uids.first.map(String.init) ?? "?"
            let setid = Set(ids.uids).count > 1 || Set(ids.gids).count > 1
            checks.append(
                DoctorCheck(
                    name: "caller", status: .problem,
                    detail: idsText + "; the target runs as uid \(owner)"
                        + (setid
                            ? " with differing real/effective/saved ids (uids \(ids.uids.map(String.init).joined(separator: "/")), gids \(ids.gids.map(String.init).joined(separator: "/")): a set-id program)"
                            : (ids.gids.allSatisfy({ $0 == caller.gid })
                                ? "" : " and gid \(ids.gids.first.map(String.init) ?? "?")")),
                    fix: "run as root (sudo), or as uid \(owner)",
                    blocks: DoctorOperation.all))
        }

        // Yama.
        if let scope = Diagnose.ptraceScope {
            let meaning = ptraceScopeMeaning(scope)
            let ancestor = isAncestor(of: pid)
            switch scope {
            case 0:
                checks.append(.ok("ptrace_scope", "kernel.yama.ptrace_scope is 0: \(meaning)"))
            case 1 where caller.privileged || ancestor:
                checks.append(
                    .ok(
                        "ptrace_scope",
                        "kernel.yama.ptrace_scope is 1: \(meaning); allowed here (\(caller.privileged ? "CAP_SYS_PTRACE" : "this tool is an ancestor of the target"))"
                    ))
            case 1:
                checks.append(
                    DoctorCheck(
                        name: "ptrace_scope", status: .problem,
                        detail: "kernel.yama.ptrace_scope is 1: \(meaning); this tool is neither",
                        fix:
                            "run as root (sudo), or start the program under this tool (`vmio-ptrace run -- PROGRAM`), or `sysctl kernel.yama.ptrace_scope=0`",
                        blocks: DoctorOperation.all))
            case 2 where caller.privileged:
                checks.append(.ok("ptrace_scope", "kernel.yama.ptrace_scope is 2: \(meaning); this tool has it"))
            case 2:
                checks.append(
                    DoctorCheck(
                        name: "ptrace_scope", status: .problem, detail: "kernel.yama.ptrace_scope is 2: \(meaning)",
                        fix: "run as root (sudo), or `sysctl kernel.yama.ptrace_scope=1` (or 0)",
                        blocks: DoctorOperation.all))
            default:
                checks.append(
                    DoctorCheck(
                        name: "ptrace_scope", status: .problem,
                        detail: "kernel.yama.ptrace_scope is \(scope): \(meaning)",
                        fix:
                            "reboot (the setting cannot be lowered while the system runs), and keep kernel.yama.ptrace_scope below 3 in /etc/sysctl.d",
                        blocks: DoctorOperation.all))
            }
        } else {
            checks.append(
                .ok(
                    "ptrace_scope",
                    "no kernel.yama.ptrace_scope (Yama is not in this kernel): no restriction beyond uids and capabilities"
                ))
        }

        // Dumpable: the kernel gives /proc/PID/* files to root when the task is not dumpable.
        if status != nil, state.kind != .zombie {
            var st = stat()
            let owner = ids.uids.count > 1 ? ids.uids[1] : (ids.uids.first ?? 0)
            if stat("/proc/\(pid)/mem", &st) != 0 {
                checks.append(
                    .ok("dumpable", "cannot tell: /proc/\(pid)/mem cannot be examined (\(Doctor.errnoText(errno)))"))
            } else if owner == 0 {
                checks.append(
                    .ok(
                        "dumpable",
                        "cannot tell for a target running as root (its /proc files belong to root either way); root may access it regardless"
                    ))
            } else if st.st_uid == 0 {
                let detail =
                    "pid \(pid) is not dumpable (a set-id program, changed credentials, or prctl(PR_SET_DUMPABLE, 0)): its /proc files belong to root, not uid \(owner)"
                if caller.privileged {
                    checks.append(.ok("dumpable", detail + "; CAP_SYS_PTRACE overrides that"))
                } else {
                    checks.append(
                        DoctorCheck(
                            name: "dumpable", status: .problem, detail: detail,
                            fix: "run as root (sudo): only CAP_SYS_PTRACE may access a process that is not dumpable",
                            blocks: DoctorOperation.all))
                }
            } else {
                checks.append(.ok("dumpable", "pid \(pid) is dumpable"))
            }
        }

        // Another tracer.
        if status != nil {
            let tracer = state.tracerPid
            if tracer == 0 {
                checks.append(.ok("tracer", "no tracer is attached"))
            } else if ProcFS.isOwnThread(tracer) {
                checks.append(.ok("tracer", "traced by this tool"))
            } else {
                let name = ProcFS.command(tracer)
                checks.append(
                    DoctorCheck(
                        name: "tracer", status: .problem,
                        detail:
                            "already traced by pid \(tracer) (\(name)); a process has one tracer at a time (reads without --stop still work)",
                        fix: "detach pid \(tracer) (\(name)) first, e.g. end it or detach it from pid \(pid)",
                        blocks: [.stop]))
            }
        }

        // Probes: one byte through each mechanism (nothing is written).
        let probe = status != nil && state.kind != .zombie ? probeAddress(pid) : nil
        var vmErrno: Int32?
        var memErrno: Int32?
        if let probe {
            var byte: UInt8 = 0
            let n = withUnsafeMutableBytes(of: &byte) { raw -> Int in
                var l = iovec(iov_base: raw.baseAddress, iov_len: 1)
                var r = iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(probe)), iov_len: 1)
                return vmio_process_vm_readv(pid, &l, 1, &r, 1)
            }
            vmErrno = n == 1 ? nil : (n < 0 ? vmio_errno() : EFAULT)
            let fd = open("/proc/\(pid)/mem", O_RDONLY | O_CLOEXEC)
            if fd < 0 {
                memErrno = errno
            } else {
                let m = withUnsafeMutableBytes(of: &byte) {
                    pread(fd, $0.baseAddress, 1, off_t(Int64(bitPattern: probe)))
                }
                memErrno = m == 1 ? nil : (m < 0 ? errno : EIO)
                close(fd)
            }
        }

        // Seccomp on this tool.
        let seccomp = (try? ProcFS.status(getpid())).flatMap { seccompMode(status: $0) } ?? 0
        let filters = (try? ProcFS.status(getpid()))?["Seccomp_filters"] ?? "?"
        switch seccomp {
        case 0:
            checks.append(.ok("seccomp", "this tool runs without a seccomp filter"))
        case 1:
            checks.append(
                DoctorCheck(
                    name: "seccomp", status: .problem,
                    detail: "this tool runs in strict seccomp mode (1): almost every system call is refused",
                    fix: "run vmio-ptrace outside the strict sandbox", blocks: DoctorOperation.all))
        default:
            if let err = vmErrno, ReadLadder.isRefusal(err), memErrno == nil {
                checks.append(
                    DoctorCheck(
                        name: "seccomp", status: .problem,
                        detail:
                            "this tool runs under a seccomp filter (\(filters) filter\(filters == "1" ? "" : "s")) that refuses process_vm_readv (\(Doctor.errnoText(err))); reads fall back to /proc/\(pid)/mem",
                        fix:
                            "nothing is needed for reads and writes (they go through /proc/\(pid)/mem); to use process_vm_readv run outside the filter (e.g. docker --security-opt seccomp=unconfined)",
                        blocks: []))
            } else if let err = vmErrno, ReadLadder.isRefusal(err), let memErr = memErrno, ReadLadder.isRefusal(memErr)
            {
                checks.append(
                    DoctorCheck(
                        name: "seccomp", status: .problem,
                        detail:
                            "this tool runs under a seccomp filter (\(filters) filter\(filters == "1" ? "" : "s")); process_vm_readv (\(Doctor.errnoText(err))) and pread on /proc/\(pid)/mem (\(Doctor.errnoText(memErr))) are both refused",
                        fix:
                            "read with --stop (the stopped target is read with PTRACE_PEEKDATA), or run outside the filter (e.g. docker --security-opt seccomp=unconfined)",
                        blocks: [.read, .write, .forceWrite]))
            } else {
                checks.append(
                    .ok(
                        "seccomp",
                        "this tool runs under a seccomp filter (\(filters) filter\(filters == "1" ? "" : "s")); process_vm_readv \(vmErrno == nil ? "still works" : "is refused") under it"
                    ))
            }
        }

        // The read mechanisms themselves.
        if let probe {
            let at = probe.hex
            let readBlocked: Set<DoctorOperation> = memErrno == nil ? [] : [.read, .write]
            if let err = vmErrno {
                let why =
                    err == ENOSYS
                    ? "not available (ENOSYS: a kernel without CONFIG_CROSS_MEMORY_ATTACH, or a seccomp filter)"
                    : "refused (\(Doctor.errnoText(err)))"
                checks.append(
                    DoctorCheck(
                        name: "process_vm_readv", status: .problem,
                        detail: "process_vm_readv of 1 byte at \(at) \(why)"
                            + (memErrno == nil ? "; the read ladder falls back to pread on /proc/\(pid)/mem" : ""),
                        fix: memErrno == nil
                            ? "none needed: reads fall back to /proc/\(pid)/mem"
                            : (ReadLadder.isRefusal(err)
                                ? "run as root (sudo), or outside the sandbox that refuses it"
                                : "check that pid \(pid) still runs"),
                        blocks: readBlocked))
            } else {
                checks.append(.ok("process_vm_readv", "process_vm_readv of 1 byte at \(at) works"))
            }
            if let err = memErrno {
                checks.append(
                    DoctorCheck(
                        name: "proc_mem", status: .problem,
                        detail: "reading /proc/\(pid)/mem at \(at) fails (\(Doctor.errnoText(err)))",
                        fix: vmErrno == nil
                            ? "none needed while process_vm_readv works; --force writes need /proc/\(pid)/mem: run as root (sudo)"
                            : "run as root (sudo)",
                        blocks: vmErrno == nil ? [.forceWrite] : [.read, .write, .forceWrite]))
            } else {
                checks.append(.ok("proc_mem", "pread of /proc/\(pid)/mem at \(at) works"))
            }
        } else if status != nil, state.kind != .zombie {
            checks.append(
                .ok("process_vm_readv", "not probed: /proc/\(pid)/maps cannot be read, so no readable address is known")
            )
        }

        // Writes through /proc/PID/mem: opening it for writing, and proc_mem.force_override.
        if status != nil, state.kind != .zombie {
            checks.append(procMemWriteCheck(pid: pid))
        }

        // Namespace and ABI.
        let nspid = status?["NSpid"].map { parseIDs($0).map { Int32(bitPattern: $0) } } ?? []
        if nspid.count > 1 {
            checks.append(
                .ok(
                    "namespace",
                    "pid \(pid) is pid \(nspid.last!) in its own pid namespace (NSpid \(nspid.map(String.init).joined(separator: " "))); its files are read through /proc/\(pid)/root"
                ))
        } else if status != nil {
            checks.append(.ok("namespace", "pid \(pid) is in this tool's pid namespace"))
        }
        var abi: TargetABI?
        if status != nil, state.kind != .zombie {
            let a = TargetABI.of(pid: pid)
            abi = a
            checks.append(
                .ok(
                    "abi",
                    a.source == .elfHeader
                        ? "\(a) (from the ELF header of /proc/\(pid)/exe)"
                        : "/proc/\(pid)/exe cannot be read; assuming this tool's own \(a)"))
        }
        return DoctorReport(
            pid: pid, operation: operation, checks: checks, nspid: nspid, abi: abi, state: state,
            targetGone: !exists || state.kind == .zombie)
    }

    // MARK: pieces (pure where possible, for the tests)

    /// `EPERM (Operation not permitted)`.
    public static func errnoText(_ err: Int32) -> String {
        let names: [Int32: String] = [
            EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", EINTR: "EINTR", EIO: "EIO", EACCES: "EACCES",
            EFAULT: "EFAULT", EINVAL: "EINVAL", ENOSYS: "ENOSYS", EBUSY: "EBUSY", EAGAIN: "EAGAIN",
        ]
        return "\(names[err] ?? "errno \(err)") (\(String(cString: strerror(err))))"
    }

    /// What each value of `kernel.yama.ptrace_scope` allows.
    public static func ptraceScopeMeaning(_ scope: Int) -> String {
        switch scope {
        case 0: "classic ptrace permissions: a process may attach to any process of the same uid"
        case 1:
            "restricted ptrace: without CAP_SYS_PTRACE only an ancestor of the target (or a process it named with PR_SET_PTRACER) may attach"
        case 2: "admin-only attach: only a process with CAP_SYS_PTRACE may attach"
        case 3:
            "no attach: ptrace is disabled for everyone, root included, and the value cannot be lowered until the next reboot"
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

    /// Whether this process is an ancestor of `pid` (what ptrace_scope 1 allows).
    static func isAncestor(of pid: Int32) -> Bool {
        let me = getpid()
        var current = pid
        for _ in 0..<4096 {
            guard let parent = (try? ProcFS.status(current))?["PPid"].flatMap({ Int32($0) }), parent > 0 else {
                return false
            }
            if parent == me { return true }
            current = parent
        }
        return false
    }

    /// The start of the target's first readable mapping (not [vvar] or [vsyscall]).
    static func probeAddress(_ pid: Int32) -> Address? {
        // Straight from the file: ProcessMaps would explain a failure through the doctor again.
        guard let bytes = try? ProcFS.readAll("/proc/\(pid)/maps"),
            let view = try? bytes.withUnsafeBytes({ raw throws(VmIoError) in
                try MapsParser.parse(bytes: raw, generation: 0)
            })
        else { return nil }
        return view.mappings.first { m in
            m.permissions.read && !["[vvar]", "[vvar_vclock]", "[vsyscall]"].contains(m.path)
        }?.start
    }

    /// Whether `/proc/PID/mem` opens for writing, and what `proc_mem.force_override`
    /// allows for writes into read-only mappings.
    static func procMemWriteCheck(pid: Int32) -> DoctorCheck {
        let fd = open("/proc/\(pid)/mem", O_RDWR | O_CLOEXEC)
        let openErrno: Int32? = fd < 0 ? errno : nil
        if fd >= 0 { close(fd) }
        var release = utsname()
        uname(&release)
        let releaseText = withUnsafeBytes(of: release.release) {
            String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
        }
        let cmdline = (try? ProcFS.readText("/proc/cmdline")) ?? ""
        var setting: String
        var source: String
        if let value = forceOverride(cmdline: cmdline) {
            setting = value
            source = "proc_mem.force_override=\(value) on the kernel command line"
        } else if let version = kernelVersion(releaseText), version < (6, 12) {
            setting = "always"
            source = "kernel \(releaseText) predates proc_mem.force_override (6.12): forced writes are always allowed"
        } else if let config = ["/boot/config-\(releaseText)"].lazy.compactMap({ try? ProcFS.readText($0) }).first,
            let value = forceOverride(kernelConfig: config)
        {
            setting = value
            source =
                "proc_mem.force_override is not on the kernel command line; the kernel config (/boot/config-\(releaseText)) makes it \(value)"
        } else {
            setting = "always"
            source =
                "proc_mem.force_override is not on the kernel command line and the kernel config is not readable here; the built-in default is always (forced writes allowed) unless the kernel was built with CONFIG_PROC_MEM_FORCE_PTRACE or CONFIG_PROC_MEM_NO_FORCE"
        }
        if let err = openErrno {
            return DoctorCheck(
                name: "proc_mem_write", status: .problem,
                detail: "/proc/\(pid)/mem does not open for writing (\(Doctor.errnoText(err))); \(source)",
                fix: "run as root (sudo)", blocks: [.forceWrite])
        }
        switch setting {
        case "never":
            return DoctorCheck(
                name: "proc_mem_write", status: .problem,
                detail:
                    "/proc/\(pid)/mem opens for writing, but \(source): writes into read-only mappings (--force) are refused",
                fix:
                    "boot with proc_mem.force_override=always (or =ptrace, and stop the target in a session while writing)",
                blocks: [.forceWrite])
        case "ptrace":
            let tracedByUs = ProcFS.isOwnThread(RunState.of(pid: pid).tracerPid)
            if tracedByUs {
                return .ok(
                    "proc_mem_write", "/proc/\(pid)/mem opens for writing; \(source), and this tool traces pid \(pid)")
            }
            return DoctorCheck(
                name: "proc_mem_write", status: .problem,
                detail:
                    "/proc/\(pid)/mem opens for writing, but \(source): writes into read-only mappings need this tool to be the target's tracer",
                fix:
                    "stop the target while writing (a session: `stop`, `write … --force`, `cont`), or boot with proc_mem.force_override=always",
                blocks: [.forceWrite])
        default:
            return .ok("proc_mem_write", "/proc/\(pid)/mem opens for writing; \(source)")
        }
    }
}

/// The tool's own credentials.
struct Caller {
    let uid: UInt32, euid: UInt32, gid: UInt32
    let groups: Set<UInt32>
    let privileged: Bool

    static var current: Caller {
        var groups = Set<UInt32>([getegid(), getgid()])
        let n = getgroups(0, nil)
        if n > 0 {
            var list = [gid_t](repeating: 0, count: Int(n))
            let got = getgroups(n, &list)
            if got > 0 { groups.formUnion(list[0..<Int(got)]) }
        }
        return Caller(
            uid: getuid(), euid: geteuid(), gid: getgid(), groups: groups,
            privileged: Diagnose.hasPtraceCapability)
    }
}

/// A target's `Uid:` and `Gid:` (real, effective, saved, filesystem).
struct TargetIDs {
    let uids: [UInt32]
    let gids: [UInt32]
    init(status: [String: String]?) {
        uids = status?["Uid"].map(Doctor.parseIDs) ?? []
        gids = status?["Gid"].map(Doctor.parseIDs) ?? []
    }
}
