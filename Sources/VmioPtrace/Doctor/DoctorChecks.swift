import SystemPackage
import VmIO

/// The doctor's checks: one pure function of the facts each (nil when the check does not
/// apply: a target that is gone has no dumpable flag), in the order they are reported.
extension Doctor {
    /// Every check that applies to `facts`, in order.
    static func checks(_ facts: DoctorFacts) -> [DoctorCheck] {
        let all: [(DoctorFacts) -> DoctorCheck?] = [
            hidepidCheck, targetCheck, callerCheck, ptraceScopeCheck, dumpableCheck, tracerCheck, mapsCheck,
            seccompCheck, processVMCheck, procMemCheck, procMemWriteCheck, namespaceCheck, abiCheck,
        ]
        return all.compactMap { $0(facts) }
    }

    /// The uids and gids of the target (real, effective, saved, filesystem).
    static func ids(_ facts: DoctorFacts) -> (uids: [UInt32], gids: [UInt32]) {
        (facts.status?["Uid"].map(parseIDs) ?? [], facts.status?["Gid"].map(parseIDs) ?? [])
    }

    /// hidepid: a process this tool may not trace looks absent under `hidepid=invisible`.
    static func hidepidCheck(_ facts: DoctorFacts) -> DoctorCheck? {
        guard let hide = hidepid(options: facts.procMountOptions ?? []), hide.level != "off", hide.level != "0" else {
            return .ok(.hidepid, "/proc is mounted without hidepid: every process is visible")
        }
        let caller = facts.caller
        let exempt = caller.privileged || (hide.gid.map { caller.groups.contains($0) } ?? false)
        let mount = "/proc is mounted with hidepid=\(hide.level)\(hide.gid.map { ",gid=\($0)" } ?? "")"
        if facts.status == nil && facts.exists && !exempt {
            return .problem(
                .hidepid,
                "\(mount): pid \(facts.pid) exists but is hidden from uid \(caller.uid), because this uid may not "
                    + "trace it",
                fix: "run as root (sudo)"
                    + (hide.gid.map { ", or as a member of group \($0) (the gid= of /proc)" } ?? "")
                    + ", or as the target's user",
                blocks: DoctorOperation.all)
        }
        let seen = facts.status == nil ? "not there" : "visible to this tool"
        return .ok(.hidepid, "\(mount); pid \(facts.pid) is \(seen)\(exempt ? " (exempt)" : "")")
    }

    /// The target itself: there, a user process, alive; its owner and state.
    static func targetCheck(_ facts: DoctorFacts) -> DoctorCheck? {
        let pid = facts.pid, command = facts.command
        guard facts.status != nil else {
            if facts.exists {
                return .problem(
                    .target, "pid \(pid) exists but /proc/\(pid)/status cannot be read", fix: "run as root (sudo)",
                    blocks: DoctorOperation.all)
            }
            return .problem(
                .target, "no process \(pid)", fix: "check the pid (`ps -e`); the process may have exited",
                blocks: DoctorOperation.all)
        }
        if facts.state.kind == .zombie {
            let parent = facts.status?["PPid"].flatMap { Int32($0) } ?? 0
            return .problem(
                .target,
                "pid \(pid) (\(command)) is a zombie (\(facts.state.state)): it has exited, so it has no memory to "
                    + "read and no threads to stop; its parent pid \(parent) (\(facts.parentCommand)) has not "
                    + "reaped it",
                fix: "nothing of it is left to read; its parent (pid \(parent)) must reap it with wait(), or be ended "
                    + "so that init reaps it",
                blocks: DoctorOperation.all)
        }
        if facts.isKernelThread {
            return .problem(
                .target,
                "pid \(pid) (\(command)) is a kernel thread: it has no user memory, and the kernel lets no process "
                    + "trace it",
                fix: "none: give the pid of a user process (`ps -ef` shows kernel threads in [brackets])",
                blocks: DoctorOperation.all)
        }
        if facts.isThisProcess {
            return .problem(
                .target,
                "pid \(pid) (\(command)) is this tool's own process: ptrace cannot stop the caller's own threads",
                fix: "give another pid (this tool reads and writes its own memory without a stop)",
                blocks: [.stop])
        }
        let uids = ids(facts).uids
        var detail = "pid \(pid) (\(command))"
        if let thread = facts.reachedThrough {
            detail += ", whose main thread has exited; it is reached through its thread \(thread),"
        }
        detail += " runs as uid \(uids.first.map(String.init) ?? "?")"
        if Set(uids).count > 1 {
            detail += " (uids real/effective/saved/fs: \(uids.map(String.init).joined(separator: "/")))"
        }
        detail += ", state \(facts.state.state)"
        switch facts.state.kind {
        case .jobStopped: detail += ": job-stopped; it stays stopped after vmio-ptrace lets it go"
        case .traceStopped: detail += ": in a ptrace stop of its tracer"
        default: detail += "; it runs on after vmio-ptrace lets it go"
        }
        return .ok(.target, detail)
    }

    /// The caller's credentials against the target's (the kernel's `__ptrace_may_access`).
    static func callerCheck(_ facts: DoctorFacts) -> DoctorCheck? {
        let caller = facts.caller
        let capability = caller.privileged ? "with CAP_SYS_PTRACE effective" : "without CAP_SYS_PTRACE"
        let idsText =
            (caller.privileged ? "" : "not privileged: ")
            + "this tool runs as uid \(caller.uid) (euid \(caller.euid)) \(capability)"
        guard facts.status != nil else { return .skipped(.caller, idsText + "; the target's ids are unknown") }
        if caller.privileged { return .ok(.caller, idsText + ": it may access any process") }
        let (uids, gids) = ids(facts)
        if uids.allSatisfy({ $0 == caller.uid }) && gids.allSatisfy({ $0 == caller.gid }) {
            return .ok(.caller, idsText + "; the target's uids and gids are all \(caller.uid)/\(caller.gid)")
        }
        let owner = uids.first.map(String.init) ?? "?"
        let setid = Set(uids).count > 1 || Set(gids).count > 1
        let differing =
            setid
            ? " with differing real/effective/saved ids (uids \(uids.map(String.init).joined(separator: "/")), "
                + "gids \(gids.map(String.init).joined(separator: "/")): a set-id program)"
            : (gids.allSatisfy({ $0 == caller.gid }) ? "" : " and gid \(gids.first.map(String.init) ?? "?")")
        return .problem(
            .caller, idsText + "; the target runs as uid \(owner)" + differing,
            fix: "run as root (sudo), or as uid \(owner)", blocks: DoctorOperation.all)
    }

    /// Yama's `kernel.yama.ptrace_scope`.
    static func ptraceScopeCheck(_ facts: DoctorFacts) -> DoctorCheck? {
        guard let scope = facts.ptraceScope else {
            return .ok(
                .ptraceScope,
                "no kernel.yama.ptrace_scope (Yama is not in this kernel): no restriction beyond uids and capabilities")
        }
        let meaning = ptraceScopeMeaning(scope)
        let privileged = facts.caller.privileged
        switch scope {
        case 0:
            return .ok(.ptraceScope, "kernel.yama.ptrace_scope is 0: \(meaning)")
        case 1 where privileged || facts.callerIsAncestor:
            let why = privileged ? "CAP_SYS_PTRACE" : "this tool is an ancestor of the target"
            return .ok(.ptraceScope, "kernel.yama.ptrace_scope is 1: \(meaning); allowed here (\(why))")
        case 1:
            return .problem(
                .ptraceScope, "kernel.yama.ptrace_scope is 1: \(meaning); this tool is neither",
                fix: "run as root (sudo), or start the program under this tool (`vmio-ptrace run -- PROGRAM`), "
                    + "or `sysctl kernel.yama.ptrace_scope=0`",
                blocks: DoctorOperation.all)
        case 2 where privileged:
            return .ok(.ptraceScope, "kernel.yama.ptrace_scope is 2: \(meaning); this tool has it")
        case 2:
            return .problem(
                .ptraceScope, "kernel.yama.ptrace_scope is 2: \(meaning)",
                fix: "run as root (sudo), or `sysctl kernel.yama.ptrace_scope=1` (or 0)", blocks: DoctorOperation.all)
        default:
            return .problem(
                .ptraceScope, "kernel.yama.ptrace_scope is \(scope): \(meaning)",
                fix: "reboot (the setting cannot be lowered while the system runs), and keep "
                    + "kernel.yama.ptrace_scope below 3 in /etc/sysctl.d",
                blocks: DoctorOperation.all)
        }
    }

    /// Dumpable: the kernel gives `/proc/PID/*` files to root when the task is not dumpable.
    static func dumpableCheck(_ facts: DoctorFacts) -> DoctorCheck? {
        guard facts.isLive, let owned = facts.memoryFileOwner else { return nil }
        let pid = facts.pid
        let uids = ids(facts).uids
        let owner = uids.count > 1 ? uids[1] : (uids.first ?? 0)
        switch owned {
        case .failure(let errno):
            return .skipped(
                .dumpable, "cannot tell: /proc/\(facts.procPid)/mem cannot be examined (\(errnoText(errno)))")
        case .success where owner == 0:
            return .ok(
                .dumpable,
                "cannot tell for a target running as root (its /proc files belong to root either way); root may "
                    + "access it regardless")
        case .success(let fileOwner) where fileOwner == 0:
            let detail =
                "pid \(pid) is not dumpable (a set-id program, changed credentials, or prctl(PR_SET_DUMPABLE, 0)): "
                + "its /proc files belong to root, not uid \(owner)"
            if facts.caller.privileged { return .ok(.dumpable, detail + "; CAP_SYS_PTRACE overrides that") }
            return .problem(
                .dumpable, detail,
                fix: "run as root (sudo): only CAP_SYS_PTRACE may access a process that is not dumpable",
                blocks: DoctorOperation.all)
        case .success:
            return .ok(.dumpable, "pid \(pid) is dumpable")
        }
    }

    /// Another tracer.
    static func tracerCheck(_ facts: DoctorFacts) -> DoctorCheck? {
        guard facts.status != nil else { return nil }
        let tracer = facts.state.tracerPid
        if tracer == 0 { return .ok(.tracer, "no tracer is attached") }
        if facts.tracerIsThisTool { return .ok(.tracer, "traced by this tool") }
        let name = facts.tracerCommand
        return .problem(
            .tracer,
            "already traced by pid \(tracer) (\(name)); a process has one tracer at a time (reads without --stop "
                + "still work)",
            fix: "detach pid \(tracer) (\(name)) first, e.g. end it or detach it from pid \(facts.pid)",
            blocks: [.stop])
    }

    /// Reading the maps, which every command does first: the check that refused when none
    /// of the checks above explains a refusal (an LSM, a sandbox).
    static func mapsCheck(_ facts: DoctorFacts) -> DoctorCheck? {
        guard facts.isLive, !facts.isKernelThread, let maps = facts.maps else { return nil }
        switch maps {
        case .success(let probe):
            return .ok(
                .maps,
                "/proc/\(facts.procPid)/maps reads" + (probe == nil ? ", but no mapping is readable" : ""))
        case .failure(let errno):
            return .problem(
                .maps,
                "reading /proc/\(facts.procPid)/maps fails (\(errnoText(errno))): the kernel's ptrace access check "
                    + "(PTRACE_MODE_READ) refuses this tool",
                fix: "if no check above explains it, a security module (SELinux, AppArmor) or a sandbox refuses "
                    + "it: run vmio-ptrace inside the target's container or sandbox, or as root outside it",
                blocks: DoctorOperation.all)
        }
    }

    /// Seccomp on this tool.
    static func seccompCheck(_ facts: DoctorFacts) -> DoctorCheck? {
        let filters = facts.caller.seccompFilters
        let count = "\(filters) filter\(filters == "1" ? "" : "s")"
        switch facts.caller.seccompMode {
        case 0:
            return .ok(.seccomp, "this tool runs without a seccomp filter")
        case 1:
            return .problem(
                .seccomp, "this tool runs in strict seccomp mode (1): almost every system call is refused",
                fix: "run vmio-ptrace outside the strict sandbox", blocks: DoctorOperation.all)
        default:
            let vm = facts.processVMErrno, mem = facts.procMemErrno
            if let vm, AccessFailure.isRefusal(vm), mem == nil {
                return DoctorCheck(
                    .seccomp, status: .problem,
                    detail: "this tool runs under a seccomp filter (\(count)) that refuses process_vm_readv "
                        + "(\(errnoText(vm))); reads fall back to /proc/\(facts.procPid)/mem",
                    fix: "nothing is needed for reads and writes (they go through /proc/\(facts.procPid)/mem); to use "
                        + "process_vm_readv run outside the filter (e.g. docker --security-opt seccomp=unconfined)",
                    blocks: [])
            }
            if let vm, AccessFailure.isRefusal(vm), let mem, AccessFailure.isRefusal(mem) {
                return .problem(
                    .seccomp,
                    "this tool runs under a seccomp filter (\(count)); process_vm_readv (\(errnoText(vm))) and "
                        + "pread on /proc/\(facts.procPid)/mem (\(errnoText(mem))) are both refused",
                    fix: "read with --stop (the stopped target is read with PTRACE_PEEKDATA), or run outside the "
                        + "filter (e.g. docker --security-opt seccomp=unconfined)",
                    blocks: [.read, .write, .forceWrite])
            }
            return .ok(
                .seccomp,
                "this tool runs under a seccomp filter (\(count)); process_vm_readv "
                    + "\(vm == nil ? "still works" : "is refused") under it")
        }
    }

    /// Why the probes could not be made, when they could not.
    static func notProbed(_ facts: DoctorFacts) -> String? {
        switch facts.maps {
        case .failure: "not probed: /proc/\(facts.procPid)/maps cannot be read, so no readable address is known"
        case .success(nil): "not probed: pid \(facts.pid) has no readable mapping"
        default: nil
        }
    }

    /// A 1-byte probe of `process_vm_readv`.
    static func processVMCheck(_ facts: DoctorFacts) -> DoctorCheck? {
        guard facts.isLive, !facts.isKernelThread else { return nil }
        guard let at = facts.probeAddress?.hex else { return .skipped(.processVMReadv, notProbed(facts) ?? "") }
        let pid = facts.pid
        guard let errno = facts.processVMErrno else {
            return .ok(.processVMReadv, "process_vm_readv of 1 byte at \(at) works")
        }
        let memWorks = facts.procMemErrno == nil
        let why =
            errno == .noFunction
            ? "not available (ENOSYS: a kernel without CONFIG_CROSS_MEMORY_ATTACH, or a seccomp filter)"
            : "refused (\(errnoText(errno)))"
        let fix =
            memWorks
            ? "none needed: reads fall back to /proc/\(facts.procPid)/mem"
            : (AccessFailure.isRefusal(errno)
                ? "run as root (sudo), or outside the sandbox that refuses it" : "check that pid \(pid) still runs")
        return .problem(
            .processVMReadv,
            "process_vm_readv of 1 byte at \(at) \(why)"
                + (memWorks ? "; the read ladder falls back to pread on /proc/\(facts.procPid)/mem" : ""),
            fix: fix, blocks: memWorks ? [] : [.read, .write])
    }

    /// A 1-byte probe of `pread` on `/proc/PID/mem`.
    static func procMemCheck(_ facts: DoctorFacts) -> DoctorCheck? {
        guard facts.isLive, !facts.isKernelThread else { return nil }
        guard let at = facts.probeAddress?.hex else { return .skipped(.procMem, notProbed(facts) ?? "") }
        guard let errno = facts.procMemErrno else {
            return .ok(.procMem, "pread of /proc/\(facts.procPid)/mem at \(at) works")
        }
        let vmWorks = facts.processVMErrno == nil
        return .problem(
            .procMem, "reading /proc/\(facts.procPid)/mem at \(at) fails (\(errnoText(errno)))",
            fix: vmWorks
                ? "none needed while process_vm_readv works; --force writes need /proc/\(facts.procPid)/mem: "
                    + "run as root (sudo)"
                : "run as root (sudo)",
            blocks: vmWorks ? [.forceWrite] : [.read, .write, .forceWrite])
    }

    /// Writes through `/proc/PID/mem`: opening it for writing, and `proc_mem.force_override`.
    static func procMemWriteCheck(_ facts: DoctorFacts) -> DoctorCheck? {
        guard facts.isLive, !facts.isKernelThread else { return nil }
        let pid = facts.pid
        let release = facts.kernelRelease
        let setting: String, source: String
        if let value = forceOverride(cmdline: facts.kernelCommandLine) {
            (setting, source) = (value, "proc_mem.force_override=\(value) on the kernel command line")
        } else if let version = kernelVersion(release), version < (6, 12) {
            (setting, source) = (
                "always",
                "kernel \(release) predates proc_mem.force_override (6.12): forced writes are always allowed"
            )
        } else if let value = facts.kernelConfig.flatMap({ forceOverride(kernelConfig: $0) }) {
            (setting, source) = (
                value,
                "proc_mem.force_override is not on the kernel command line; the kernel config "
                    + "(/boot/config-\(release)) makes it \(value)"
            )
        } else {
            (setting, source) = (
                "always",
                "proc_mem.force_override is not on the kernel command line and the kernel config is not readable "
                    + "here; the built-in default is always (forced writes allowed) unless the kernel was built "
                    + "with CONFIG_PROC_MEM_FORCE_PTRACE or CONFIG_PROC_MEM_NO_FORCE"
            )
        }
        if let errno = facts.procMemWriteErrno {
            return .problem(
                .procMemWrite, "/proc/\(facts.procPid)/mem does not open for writing (\(errnoText(errno))); \(source)",
                fix: "run as root (sudo)", blocks: [.forceWrite])
        }
        switch setting {
        case "never":
            return .problem(
                .procMemWrite,
                "/proc/\(facts.procPid)/mem opens for writing, but \(source): "
                    + "writes into read-only mappings (--force) are "
                    + "refused",
                fix: "boot with proc_mem.force_override=always (or =ptrace, and stop the target in a session while "
                    + "writing)",
                blocks: [.forceWrite])
        case "ptrace" where facts.tracerIsThisTool && facts.state.tracerPid != 0:
            return .ok(
                .procMemWrite,
                "/proc/\(facts.procPid)/mem opens for writing; \(source), and this tool traces pid \(pid)")
        case "ptrace":
            return .problem(
                .procMemWrite,
                "/proc/\(facts.procPid)/mem opens for writing, but \(source): "
                    + "writes into read-only mappings need this tool "
                    + "to be the target's tracer",
                fix: "stop the target while writing (a session: `stop`, `write … --force`, `cont`), or boot with "
                    + "proc_mem.force_override=always",
                blocks: [.forceWrite])
        default:
            return .ok(.procMemWrite, "/proc/\(facts.procPid)/mem opens for writing; \(source)")
        }
    }

    /// The pid namespace.
    static func namespaceCheck(_ facts: DoctorFacts) -> DoctorCheck? {
        let nspid = facts.status?["NSpid"].map { parseIDs($0).map { Int32(bitPattern: $0) } } ?? []
        let pid = facts.pid
        if nspid.count > 1 {
            return .ok(
                .namespace,
                "pid \(pid) is pid \(nspid.last!) in its own pid namespace (NSpid "
                    + "\(nspid.map(String.init).joined(separator: " "))); its files are read through "
                    + "/proc/\(facts.procPid)/root"
            )
        }
        guard facts.status != nil else { return nil }
        return .ok(.namespace, "pid \(pid) is in this tool's pid namespace")
    }

    /// The ABI, from the ELF header of `/proc/PID/exe`.
    static func abiCheck(_ facts: DoctorFacts) -> DoctorCheck? {
        guard facts.isLive else { return nil }
        guard let abi = facts.abi else {
            return .skipped(
                .abi,
                "/proc/\(facts.procPid)/exe cannot be read; other commands assume this tool's own \(TargetABI.host)")
        }
        return .ok(.abi, "\(abi) (from the ELF header of /proc/\(facts.procPid)/exe)")
    }
}
