import Glibc
import SystemPackage
import VmIO

/// Everything the doctor looks at, gathered once by ``gather(pid:)``: plain values, so each
/// check (DoctorChecks.swift) is a pure function of them, testable without a live process.
/// A fact that could not be learned is nil (or an errno) and the check that needs it says
/// so (`skipped`).
public struct DoctorFacts: Sendable {
    /// The tool's own credentials.
    public struct Caller: Sendable, Hashable {
        /// The real and effective user ids and the group id.
        public var uid: UInt32, euid: UInt32, gid: UInt32
        /// The supplementary groups.
        public var groups: Set<UInt32>
        /// `CAP_SYS_PTRACE` in the effective set.
        public var privileged: Bool
        /// `Seccomp:` of its status (0 none, 1 strict, 2 filter), and `Seccomp_filters`.
        public var seccompMode: Int
        /// `Seccomp_filters` of its status.
        public var seccompFilters: String
    }

    /// The process examined.
    public var pid: Int32
    /// The live thread the process is examined through when its main thread has exited
    /// (``Target/reachableID(of:)``); nil when that is the pid itself.
    public var reachedThrough: Int32? = nil
    /// The id under `/proc` whose files were read: ``reachedThrough``, else ``pid``.
    public var procPid: Int32 { reachedThrough ?? pid }
    /// This tool's own credentials.
    public var caller: Caller
    /// `/proc/PID/status` as key → value; nil when it cannot be read.
    public var status: [String: String]?
    /// Whether the process exists, visible in `/proc` or not (`kill(pid, 0)`).
    public var exists: Bool
    /// What the target is doing.
    public var state: RunState
    /// `/proc/PID/comm`.
    public var command: String
    /// `PF_KTHREAD` in `/proc/PID/stat`.
    public var isKernelThread: Bool
    /// The parent's command name (for a zombie's parent).
    public var parentCommand: String
    /// Whether this tool is an ancestor of the target (what `ptrace_scope` 1 allows).
    public var callerIsAncestor: Bool
    /// The options of the `/proc` mount (`hidepid=`, `gid=`); nil when there is none.
    public var procMountOptions: [String]?
    /// `kernel.yama.ptrace_scope`; nil without Yama.
    public var ptraceScope: Int?
    /// The owner of `/proc/PID/mem` (root for a process that is not dumpable), or the errno of `stat`.
    public var memoryFileOwner: Result<UInt32, Errno>?
    /// Reading `/proc/PID/maps`: the start of the first readable mapping (nil when it has
    /// none), or the errno of the refusal. Nil when not tried (no such process, a zombie).
    public var maps: Result<Address?, Errno>?
    /// A 1-byte `process_vm_readv` at the probe address: nil when it worked (or was not tried).
    public var processVMErrno: Errno?
    /// A 1-byte `pread` of `/proc/PID/mem` at the probe address: nil when it worked (or was not tried).
    public var procMemErrno: Errno?
    /// Opening `/proc/PID/mem` for writing: nil when it opened.
    public var procMemWriteErrno: Errno?
    /// The tracer (`TracerPid`) is a thread of this tool, and its command name.
    public var tracerIsThisTool: Bool
    /// The tracer's command name.
    public var tracerCommand: String
    /// `uname -r`, the kernel command line, and the kernel's config when readable.
    public var kernelRelease: String
    /// `/proc/cmdline`.
    public var kernelCommandLine: String
    /// The kernel's config (`/proc/config.gz` or `/boot/config-RELEASE`), when readable.
    public var kernelConfig: String?
    /// The ABI from the ELF header of `/proc/PID/exe`; nil when it cannot be read.
    public var abi: TargetABI?
    /// The process is this tool's own, which ptrace cannot stop.
    public var isThisProcess = false

    /// The probe address, when the maps were read and hold a readable mapping.
    public var probeAddress: Address? {
        if case .success(let address) = maps { address } else { nil }
    }

    /// The process exists and is not a zombie: its files, memory and threads are there to examine.
    public var isLive: Bool { status != nil && state.kind != .zombie }

    /// Gathers every fact about `pid` once (each file read once; the probes read one byte
    /// each through `process_vm_readv` and `/proc/PID/mem`; nothing is written).
    public static func gather(pid requested: Int32) -> DoctorFacts {
        // A process whose main thread has exited is examined through a live thread.
        let pid = ProcFS.liveThreadIfMainThreadExited(requested) ?? requested
        let status = try? ProcFS.status(pid)
        let state = RunState.of(pid: pid)
        let stat = ProcFS.stat(pid)
        let live = status != nil && state.kind != .zombie
        let maps: Result<Address?, Errno>? = live ? probe(mapsOf: pid) : nil
        var facts = DoctorFacts(
            pid: requested, reachedThrough: pid == requested ? nil : pid, caller: .current, status: status,
            exists: status != nil || ProcFS.exists(pid), state: state,
            command: ProcFS.command(pid), isKernelThread: stat?.isKernelThread ?? false,
            parentCommand: stat.map { ProcFS.command($0.parent) } ?? "?",
            callerIsAncestor: isAncestor(of: pid),
            procMountOptions: (try? ProcFS.readText("/proc/self/mountinfo")).flatMap {
                Doctor.procMountOptions(mountinfo: $0)
            },
            ptraceScope: (try? ProcFS.readText("/proc/sys/kernel/yama/ptrace_scope")).flatMap {
                Int($0.trimmingCharacters(in: " \n"))
            },
            memoryFileOwner: nil, maps: maps, processVMErrno: nil, procMemErrno: nil, procMemWriteErrno: nil,
            tracerIsThisTool: ProcFS.isOwnThread(state.tracerPid), tracerCommand: ProcFS.command(state.tracerPid),
            kernelRelease: Sys.kernelRelease, kernelCommandLine: (try? ProcFS.readText("/proc/cmdline")) ?? "",
            kernelConfig: nil, abi: nil)
        if Doctor.forceOverride(cmdline: facts.kernelCommandLine) == nil,
            Doctor.kernelVersion(facts.kernelRelease).map({ $0 >= (6, 12) }) ?? true
        {
            facts.kernelConfig = try? ProcFS.readText("/boot/config-\(facts.kernelRelease)")
        }
        facts.isThisProcess = ProcFS.isOwnThread(pid)
        guard live else { return facts }
        facts.memoryFileOwner = Result { () throws(Errno) in try Sys.fileStatus("/proc/\(pid)/mem").st_uid }
        if let address = facts.probeAddress {
            facts.processVMErrno = probeProcessVM(pid: pid, at: address)
            facts.procMemErrno = probeProcMem(pid: pid, at: address)
        }
        do { Sys.close(try Sys.open("/proc/\(pid)/mem", O_RDWR)) } catch { facts.procMemWriteErrno = error }
        if let header = TargetABI.readHeader(pid: pid) { facts.abi = TargetABI.parse(header: header) }
        return facts
    }

    /// Reads `/proc/PID/maps` (straight from the file, not through ``ProcessMaps``, whose
    /// errors the doctor explains): the start of the first readable mapping other than
    /// `[vvar]` and `[vsyscall]`, or the errno.
    static func probe(mapsOf pid: Int32) -> Result<Address?, Errno> {
        Result { () throws(Errno) -> Address? in
            let bytes = try ProcFS.readAll("/proc/\(pid)/maps")
            let view = try? bytes.withUnsafeBytes { raw throws(VmIoError) in try MapsParser.parse(bytes: raw) }
            return view?.mappings.first { m in
                m.permissions.read && !["[vvar]", "[vvar_vclock]", "[vsyscall]"].contains(m.path)
            }?.start
        }
    }

    /// One byte through `process_vm_readv`: nil when it moved.
    static func probeProcessVM(pid: Int32, at address: Address) -> Errno? {
        var byte: UInt8 = 0
        let moved = withUnsafeMutableBytes(of: &byte) { raw in
            Result { () throws(Errno) in try Sys.processVMReadv(pid: pid, into: raw, from: address) }
        }
        switch moved {
        case .success(let n): return n == 1 ? nil : .badAddress
        case .failure(let errno): return errno
        }
    }

    /// One byte through `pread` on `/proc/PID/mem`: nil when it moved.
    static func probeProcMem(pid: Int32, at address: Address) -> Errno? {
        do {
            let fd = try Sys.open("/proc/\(pid)/mem", O_RDONLY)
            defer { Sys.close(fd) }
            var byte: UInt8 = 0
            let n = try withUnsafeMutableBytes(of: &byte) { raw in
                Result { () throws(Errno) in try Sys.pread(fd, into: raw, at: address) }
            }.get()
            return n == 1 ? nil : .ioError
        } catch { return error }
    }

    /// Whether this process is an ancestor of `pid`.
    static func isAncestor(of pid: Int32) -> Bool {
        let me = Sys.processID
        var current = pid
        for _ in 0..<4096 {
            guard let parent = ProcFS.stat(current)?.parent, parent > 0 else { return false }
            if parent == me { return true }
            current = parent
        }
        return false
    }
}

extension DoctorFacts.Caller {
    /// This process's credentials, capability and seccomp mode.
    static var current: Self {
        let ids = Sys.credentials
        let status = try? ProcFS.status(Sys.processID)
        let capabilities = status?["CapEff"].flatMap { UInt64($0, radix: 16) }
        return Self(
            uid: ids.uid, euid: ids.euid, gid: ids.gid, groups: Set([ids.egid, ids.gid] + ids.groups),
            privileged: capabilities.map { $0 & 1 << DoctorFacts.capSysPtrace != 0 } ?? (ids.euid == 0),
            seccompMode: status.flatMap { Doctor.seccompMode(status: $0) } ?? 0,
            seccompFilters: status?["Seccomp_filters"] ?? "?")
    }
}

extension DoctorFacts {
    /// `CAP_SYS_PTRACE` of `include/uapi/linux/capability.h`.
    static let capSysPtrace: UInt64 = 19
}
