import Glibc
import SystemPackage
import VmIO

/// The general registers of a stopped thread (`PTRACE_GETREGS`, `struct user_regs_struct`).
public struct Registers: Hashable, Sendable {
    /// Every register, in the order they are shown: instruction and stack pointers first,
    /// then the general registers, flags, segment registers, segment bases, `orig_rax`.
    public static let names = [
        "rip", "rsp", "rbp", "rax", "rbx", "rcx", "rdx", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
        "eflags", "cs", "ss", "ds", "es", "fs", "gs", "fs_base", "gs_base", "orig_rax",
    ]

    /// The values, in the order of ``names``.
    public let values: [UInt64]

    /// The registers of a `PTRACE_GETREGS` answer.
    public init(_ r: user_regs_struct) {
        values = [
            r.rip, r.rsp, r.rbp, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi,
            r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15,
            r.eflags, r.cs, r.ss, r.ds, r.es, r.fs, r.gs, r.fs_base, r.gs_base, r.orig_rax,
        ].map { UInt64($0) }
    }

    private init(values: [UInt64]) {
        self.values = values
    }

    /// These registers with the instruction pointer at `address`: what they read after a
    /// `PTRACE_POKEUSER` of `rip`, without reading them again.
    public func movingInstructionPointer(to address: UInt64) -> Registers {
        var moved = values
        moved[0] = address
        return Registers(values: moved)
    }

    /// (name, value) pairs in order.
    public var named: [(name: String, value: UInt64)] { Array(zip(Self.names, values)) }

    /// One register by name (`rip`, `fs_base`…), nil for an unknown name.
    public subscript(name: String) -> UInt64? {
        Self.names.firstIndex(of: name).map { values[$0] }
    }

    /// The instruction pointer.
    public var rip: UInt64 { values[0] }
    /// The stack pointer.
    public var rsp: UInt64 { values[1] }

    /// Reads the registers of `tid`, which must be in a ptrace stop held by the calling
    /// thread. `ESRCH` (not stopped by us, or gone) is ``TargetError/noSuchProcess(pid:)``
    /// of `pid`.
    public static func read(pid: Int32, tid: Int32) throws(TargetError) -> Registers {
        do { return Registers(try Sys.ptraceGetRegisters(tid)) } catch {
            if error == .noSuchProcess { throw .noSuchProcess(pid: pid) }
            throw .system(call: "ptrace(PTRACE_GETREGS, \(tid))", errno: error)
        }
    }
}
