import VmIO

/// A task's ids as its core shows them (`pr_pid`, `pr_ppid`, `pr_pgrp`, `pr_sid`), in the
/// task's own pid namespace; `pid` is the thread's id in `NT_PRSTATUS`.
public struct CoreTaskIDs: Hashable, Sendable {
    /// The process (or thread) id.
    public var pid: Int32
    /// The parent's pid.
    public var parent: Int32
    /// The process group.
    public var processGroup: Int32
    /// The session.
    public var session: Int32
    /// The four ids (0 where unknown).
    public init(pid: Int32 = 0, parent: Int32 = 0, processGroup: Int32 = 0, session: Int32 = 0) {
        (self.pid, self.parent, self.processGroup, self.session) = (pid, parent, processGroup, session)
    }
}

/// The process-wide facts of `NT_PRPSINFO` (`struct elf_prpsinfo`), as `/proc/PID/stat`,
/// `status` and `cmdline` give them.
public struct CoreProcessFacts: Hashable, Sendable {
    /// The state letter of `stat` (`R`, `S`, `D`, `T`, `t`, `Z`…).
    public var state: Character = "R"
    /// The nice value.
    public var nice: Int32 = 0
    /// The task's `PF_*` flags.
    public var flags: UInt64 = 0
    /// The real user id.
    public var uid: UInt32 = 0
    /// The real group id.
    public var gid: UInt32 = 0
    /// Its pid, parent, process group and session.
    public var ids = CoreTaskIDs()
    /// `comm`: at most 15 bytes are kept.
    public var command = ""
    /// `cmdline`: the arguments, each NUL-terminated.
    public var arguments: [UInt8] = []
    /// Facts of zeros, to fill in.
    public init() {}
}

/// One thread's facts: its `NT_PRSTATUS` fields and the register sets that follow it.
public struct CoreThreadFacts: Hashable, Sendable {
    /// `ids.pid` is the thread id.
    public var ids = CoreTaskIDs()
    /// The signal the thread stopped on (0 for the stop this tool asked for).
    public var signal: Int32 = 0
    /// `SigPnd` and `SigBlk` of its `status`.
    public var pendingSignals: UInt64 = 0
    /// The blocked signals (`SigBlk`).
    public var blockedSignals: UInt64 = 0
    /// User, system, and children's user and system time, in microseconds.
    public var times: [UInt64] = [0, 0, 0, 0]
    /// `pr_reg`: the general registers as `PTRACE_GETREGSET(NT_PRSTATUS)` gives them.
    public var generalRegisters: [UInt8] = []
    /// The further register sets, in order (`NT_FPREGSET`, `NT_X86_XSTATE`…): type and bytes.
    public var registerSets: [RegisterSet] = []
    /// The 128-byte `siginfo_t` of ``signal`` (this tool's 64-bit layout), when it stopped on one.
    public var signalInfo: [UInt8]?
    /// Facts of zeros, to fill in.
    public init() {}

    /// One register set: its note type and its bytes.
    public struct RegisterSet: Hashable, Sendable {
        /// The note type (`NT_FPREGSET`, `NT_X86_XSTATE`…).
        public var type: UInt32
        /// The set as `PTRACE_GETREGSET` gives it.
        public var bytes: [UInt8]
        /// A set of note type `type`.
        public init(type: UInt32, bytes: [UInt8]) {
            (self.type, self.bytes) = (type, bytes)
        }
    }
}

/// One entry of `NT_FILE`: a file-backed mapping, its file offset and the file's name.
public struct CoreFileEntry: Hashable, Sendable {
    /// The first address of the mapping.
    public var start: UInt64
    /// The address just past it.
    public var end: UInt64
    /// Its offset in the file, in pages.
    public var offset: UInt64
    /// The file's path.
    public var name: String
    /// An entry for `name` mapped at `start..<end` from page `offset`.
    public init(start: UInt64, end: UInt64, offset: UInt64, name: String) {
        self.start = start
        self.end = end
        self.offset = offset
        self.name = name
    }
}

extension CoreFormat {
    /// `pr_reg`'s size: `struct user_regs_struct` of the class (27 × 8 or 17 × 4 bytes).
    public var generalRegistersSize: Int { is64Bit ? 216 : 68 }

    /// `NT_PRSTATUS` of one thread (`struct elf_prstatus`: 336 bytes in ELFCLASS64, 144 in
    /// the i386 layout).
    public func prstatus(_ t: CoreThreadFacts, floatingPointValid: Bool) -> [UInt8] {
        var out = ByteWriter(self)
        out.i32(t.signal)  // pr_info.si_signo
        out.i32(0)  // si_code
        out.i32(0)  // si_errno
        out.u16(UInt16(truncatingIfNeeded: t.signal))  // pr_cursig
        out.align(wordSize)
        out.word(truncate(t.pendingSignals))
        out.word(truncate(t.blockedSignals))
        out.ids(t.ids)
        for microseconds in t.times.fitted(to: 4, with: 0) {
            out.word(microseconds / 1_000_000)
            out.word(microseconds % 1_000_000)
        }
        out.fixedString(t.generalRegisters, count: generalRegistersSize)
        out.i32(floatingPointValid ? 1 : 0)
        out.align(wordSize)
        return out.data
    }

    /// `NT_PRPSINFO` (`struct elf_prpsinfo`: 136 bytes in ELFCLASS64, 124 in the i386 layout,
    /// whose uid and gid are 16 bits).
    public func prpsinfo(_ p: CoreProcessFacts) -> [UInt8] {
        var out = ByteWriter(self)
        // pr_state is the index of the state as the kernel counts them; pr_sname its letter.
        let states: [Character] = ["R", "S", "D", "T", "Z", "W"]
        let letter = p.state == "t" ? "T" : p.state
        let index = states.firstIndex(of: letter) ?? 0
        out.u8(UInt8(index))
        out.u8(letter.asciiValue ?? UInt8(ascii: "."))
        out.u8(letter == "Z" ? 1 : 0)
        out.u8(UInt8(truncatingIfNeeded: p.nice))
        out.align(wordSize)
        out.word(truncate(p.flags))
        if is64Bit {
            out.u32(p.uid)
            out.u32(p.gid)
        } else {
            out.u16(UInt16(truncatingIfNeeded: p.uid))
            out.u16(UInt16(truncatingIfNeeded: p.gid))
        }
        out.ids(p.ids)
        out.fixedString(Array(p.command.utf8.prefix(15)), count: 16)
        // The arguments with their NULs as spaces, at most 79 bytes and a NUL.
        var arguments = Array(p.arguments.prefix(79)).map { $0 == 0 ? UInt8(ascii: " ") : $0 }
        while arguments.last == UInt8(ascii: " ") { arguments.removeLast() }
        out.fixedString(arguments, count: 80)
        return out.data
    }

    /// `NT_FILE`: the count, the page size, `(start, end, offset in pages)` for each entry,
    /// then the names, each NUL-terminated.
    public func fileNote(_ files: [CoreFileEntry], pageSize: UInt64 = 4096) -> [UInt8] {
        var out = ByteWriter(self)
        out.word(UInt64(files.count))
        out.word(pageSize)
        for f in files {
            out.word(f.start)
            out.word(f.end)
            out.word(f.offset / pageSize)
        }
        for f in files { out.bytes(Array(f.name.utf8) + [0]) }
        return out.data
    }

    /// `NT_SIGINFO` in the class's layout: the 64-bit `siginfo_t` as it is, or converted to the
    /// i386 one (the union starts at 12, not 16; a fault's address is 4 bytes, other members
    /// are ints and move as they are).
    public func signalInfo(_ native: [UInt8]) -> [UInt8] {
        let info = native.fitted(to: 128, with: 0)
        if is64Bit { return info }
        var out = Array(info[0..<12])
        let signal = Int32(littleEndianBytes: info[0..<4])
        // SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV carry an address.
        if [4, 5, 7, 8, 11].contains(signal) {
            out += info[16..<20]
        } else {
            out += info[16..<128]
        }
        return out + [UInt8](repeating: 0, count: 128 - out.count)
    }

    /// The notes of a core, in the order Linux writes them: for each thread its
    /// `NT_PRSTATUS`, after the first one `NT_PRPSINFO`, `NT_AUXV` and `NT_FILE`, then the
    /// thread's register sets and its `NT_SIGINFO`. The first thread is the one debuggers
    /// select first.
    public func notes(
        process: CoreProcessFacts, threads: [CoreThreadFacts], auxv: [UInt8], files: [CoreFileEntry]
    ) -> [UInt8] {
        var out: [UInt8] = []
        func add(_ type: UInt32, _ description: [UInt8]) {
            out += note(name: CoreNoteType.name(of: type), type: type, description: description)
        }
        for (i, t) in threads.enumerated() {
            let fpValid = t.registerSets.contains { $0.type == CoreNoteType.fpregset }
            add(CoreNoteType.prstatus, prstatus(t, floatingPointValid: fpValid))
            if i == 0 {
                add(CoreNoteType.prpsinfo, prpsinfo(process))
                if !auxv.isEmpty { add(CoreNoteType.auxv, auxv) }
                add(CoreNoteType.file, fileNote(files))
            }
            for set in t.registerSets { add(set.type, set.bytes) }
            if let info = t.signalInfo { add(CoreNoteType.siginfo, signalInfo(info)) }
        }
        return out
    }

    /// A value as the class's `unsigned long` holds it.
    private func truncate(_ value: UInt64) -> UInt64 {
        is64Bit ? value : value & 0xffff_ffff
    }
}

extension ByteWriter {
    /// `pr_pid`, `pr_ppid`, `pr_pgrp`, `pr_sid`, as `NT_PRSTATUS` and `NT_PRPSINFO` both hold them.
    fileprivate mutating func ids(_ ids: CoreTaskIDs) {
        for id in [ids.pid, ids.parent, ids.processGroup, ids.session] { i32(id) }
    }
}

extension Array {
    /// The first `count` elements, `filler` after them where there are fewer.
    fileprivate func fitted(to count: Int, with filler: Element) -> [Element] {
        Array(prefix(count)) + repeatElement(filler, count: Swift.max(0, count - self.count))
    }
}

extension Int32 {
    /// The little-endian value of 4 bytes.
    init(littleEndianBytes bytes: ArraySlice<UInt8>) {
        var raw: UInt32 = 0
        for (k, b) in bytes.prefix(4).enumerated() { raw |= UInt32(b) << (8 * UInt32(k)) }
        self = Int32(bitPattern: raw)
    }
}
