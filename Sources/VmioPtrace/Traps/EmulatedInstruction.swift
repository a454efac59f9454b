/// An instruction under a software breakpoint that the session carries out itself when the
/// thread goes on: it writes the thread's registers (and, for a push, its stack) instead of
/// putting the byte back and single-stepping the thread with the others held. That saves the
/// step's stop, and the other threads never run while the byte is out. The set is what
/// function entries start with (what the kernel's uprobes also emulate); any other
/// instruction is single-stepped.
enum EmulatedInstruction: Equatable, Sendable {
    /// An instruction with no effect but moving the pc: `nop`, `xchg %ax,%ax`, `endbr64`.
    case skip(length: Int)
    /// `push REGISTER`: rsp − 8, the register's value at rsp, the pc past it.
    case push(register: String, length: Int)

    /// The most bytes ``decode(_:)`` looks at.
    static let longest = 4

    /// The registers `push` names, by the low three bits of its opcode (0x50–0x57), and with a
    /// REX.B prefix (0x41).
    private static let pushed = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi"]
    private static let pushedExtended = ["r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]

    /// The instruction that `bytes` (the text at the breakpoint, as the file has it) start with,
    /// or nil when it is not one this emulates.
    static func decode(_ bytes: [UInt8]) -> EmulatedInstruction? {
        guard let first = bytes.first else { return nil }
        switch first {
        case 0x90: return .skip(length: 1)
        case 0x50...0x57: return .push(register: pushed[Int(first - 0x50)], length: 1)
        case 0x41 where bytes.count > 1 && (0x50...0x57).contains(bytes[1]):
            return .push(register: pushedExtended[Int(bytes[1] - 0x50)], length: 2)
        case 0x66 where bytes.count > 1 && bytes[1] == 0x90: return .skip(length: 2)
        case 0xf3 where bytes.starts(with: [0xf3, 0x0f, 0x1e, 0xfa]): return .skip(length: 4)
        default: return nil
        }
    }

    /// How many bytes the instruction takes.
    var length: Int {
        switch self {
        case .skip(let length), .push(_, let length): length
        }
    }
}
