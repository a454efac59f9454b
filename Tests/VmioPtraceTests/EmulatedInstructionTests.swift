// The instructions a breakpoint's step is carried out for, decoded from their bytes; every
// other first byte is stepped over.

import Testing

@testable import VmioPtrace

@Suite struct EmulatedInstructionTests {
    @Test func theEntryInstructionsDecode() {
        #expect(EmulatedInstruction.decode([0x90]) == .skip(length: 1))
        #expect(EmulatedInstruction.decode([0x66, 0x90, 0x48, 0x89]) == .skip(length: 2))
        #expect(EmulatedInstruction.decode([0xf3, 0x0f, 0x1e, 0xfa]) == .skip(length: 4))
        let low = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi"]
        let high = ["r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]
        for n in 0..<8 {
            #expect(EmulatedInstruction.decode([0x50 + UInt8(n), 0x48]) == .push(register: low[n], length: 1))
            #expect(EmulatedInstruction.decode([0x41, 0x50 + UInt8(n)]) == .push(register: high[n], length: 2))
            #expect(Registers.names.contains(low[n]) && Registers.names.contains(high[n]))
        }
        #expect(EmulatedInstruction.decode([0x55]).map(\.length) == 1)
        #expect(EmulatedInstruction.decode([0x41, 0x54]).map(\.length) == 2)
    }

    @Test func everythingElseIsSteppedOver() {
        let others: [[UInt8]] = [
            [], [0x48, 0x89, 0xe5], [0x41], [0x41, 0x58], [0x66], [0x66, 0x91], [0xf3, 0x0f, 0x1e],
            [0xf3, 0x0f, 0x1e, 0xfb], [0xf3, 0x90], [0x58], [0x5f], [0xc3], [0xcc], [0x40, 0x50], [0x49, 0x50],
        ]
        for bytes in others { #expect(EmulatedInstruction.decode(bytes) == nil, "\(bytes)") }
    }
}
