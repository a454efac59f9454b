// The bytes of an ELF core other than memory (CoreFormat, CoreNotes) and the coredump filter's
// decisions (CoreFilter), as pure functions: the layouts of the gABI and of Linux's
// include/uapi/linux/elf.h, in both classes.

import Testing
import VmIO
import VmioPtrace

private let format64 = CoreFormat(wordSize: 8, byteOrder: .little, machine: 62)
private let format32 = CoreFormat(wordSize: 4, byteOrder: .little, machine: 3)

private func le(_ bytes: ArraySlice<UInt8>) -> UInt64 {
    bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) }
}

private func mapping(
    _ perms: String, path: String = "", inode: UInt64 = 0, offset: UInt64 = 0, deleted: Bool = false
) -> Mapping {
    let p = Array(perms)
    return Mapping(
        range: try! AddressRange(start: 0x10000, count: 0x4000),
        permissions: Permissions(read: p[0] == "r", write: p[1] == "w", execute: p[2] == "x", shared: p[3] == "s"),
        offset: offset, inode: inode, path: path, isDeleted: deleted)
}

@Suite struct CoreFormatTests {
    @Test func headerNamesTheClassTheMachineAndTheProgramHeaders() {
        let h = format64.header(programHeaders: 12, sectionHeaderOffset: 0)
        #expect(h.count == 64)
        #expect(Array(h[0..<7]) == [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1])
        #expect(le(h[16..<18]) == 4, "ET_CORE")
        #expect(le(h[18..<20]) == 62)
        #expect(le(h[32..<40]) == 64, "e_phoff")
        #expect(le(h[54..<56]) == 56, "e_phentsize")
        #expect(le(h[56..<58]) == 12, "e_phnum")
        #expect(le(h[60..<62]) == 0, "e_shnum")

        let h32 = format32.header(programHeaders: 3, sectionHeaderOffset: 0)
        #expect(h32.count == 52)
        #expect(h32[4] == 1, "ELFCLASS32")
        #expect(le(h32[18..<20]) == 3, "EM_386")
        #expect(le(h32[28..<32]) == 52, "e_phoff")
        #expect(le(h32[42..<44]) == 32, "e_phentsize")
        #expect(le(h32[44..<46]) == 3)
    }

    @Test func seventyThousandProgramHeadersUseExtendedNumbering() {
        let h = format64.header(programHeaders: 70_000, sectionHeaderOffset: 0x1234_0000)
        #expect(le(h[56..<58]) == 0xffff, "PN_XNUM")
        #expect(le(h[40..<48]) == 0x1234_0000, "e_shoff")
        #expect(le(h[58..<60]) == 64, "e_shentsize")
        #expect(le(h[60..<62]) == 1, "e_shnum")
        let section = format64.extendedNumberingSection(programHeaders: 70_000)
        #expect(section.count == 64)
        #expect(le(section[44..<48]) == 70_000, "sh_info")
    }

    @Test func programHeadersInBothClasses() {
        let s = CoreFormat.Segment(
            type: CoreFormat.Segment.load, flags: 6, offset: 0x2000, address: 0xf7f0_0000, fileSize: 0x1000,
            memorySize: 0x3000, alignment: 4096)
        let p = format64.programHeader(s)
        #expect(p.count == 56)
        #expect(le(p[0..<4]) == 1 && le(p[4..<8]) == 6)
        #expect(le(p[8..<16]) == 0x2000 && le(p[16..<24]) == 0xf7f0_0000)
        #expect(le(p[32..<40]) == 0x1000 && le(p[40..<48]) == 0x3000 && le(p[48..<56]) == 4096)
        let q = format32.programHeader(s)
        #expect(q.count == 32)
        #expect(le(q[4..<8]) == 0x2000 && le(q[8..<12]) == 0xf7f0_0000)
        #expect(le(q[16..<20]) == 0x1000 && le(q[20..<24]) == 0x3000 && le(q[24..<28]) == 6)
        #expect(CoreFormat.Segment.flags(of: Permissions(read: true, write: false, execute: true, shared: false)) == 5)
    }

    @Test func notesArePaddedToFourBytes() {
        let n = format64.note(name: "CORE", type: 6, description: [1, 2, 3, 4, 5])
        #expect(le(n[0..<4]) == 5, "namesz counts the NUL")
        #expect(le(n[4..<8]) == 5)
        #expect(le(n[8..<12]) == 6)
        #expect(Array(n[12..<20]) == Array("CORE".utf8) + [0, 0, 0, 0])
        #expect(Array(n[20..<28]) == [1, 2, 3, 4, 5, 0, 0, 0])
        #expect(n.count == 28)
        #expect(CoreNoteType.name(of: CoreNoteType.x86XState) == "LINUX")
        #expect(CoreNoteType.name(of: CoreNoteType.prstatus) == "CORE")
    }

    @Test func prstatusAndPrpsinfoHaveTheKernelsSizesAndOffsets() {
        var t = CoreThreadFacts()
        t.ids = CoreTaskIDs(pid: 1234, parent: 1)
        t.signal = 11
        t.blockedSignals = 0x8000_0000_0000_0001
        t.generalRegisters = [UInt8](repeating: 0xab, count: 216)
        t.times = [1_500_000, 0, 0, 0]
        let s = format64.prstatus(t, floatingPointValid: true)
        #expect(s.count == 336)
        #expect(le(s[0..<4]) == 11 && le(s[12..<14]) == 11, "si_signo, pr_cursig")
        #expect(le(s[24..<32]) == 0x8000_0000_0000_0001, "pr_sighold")
        #expect(le(s[32..<36]) == 1234 && le(s[36..<40]) == 1, "pr_pid, pr_ppid")
        #expect(le(s[48..<56]) == 1 && le(s[56..<64]) == 500_000, "pr_utime")
        #expect(s[112] == 0xab && s[327] == 0xab && s[328] == 1, "pr_reg at 112, pr_fpvalid at 328")

        t.generalRegisters = [UInt8](repeating: 0xcd, count: 68)
        let s32 = format32.prstatus(t, floatingPointValid: false)
        #expect(s32.count == 144)
        #expect(le(s32[20..<24]) == 1, "pr_sighold cut to 32 bits")
        #expect(le(s32[24..<28]) == 1234)
        #expect(le(s32[40..<44]) == 1 && le(s32[44..<48]) == 500_000)
        #expect(s32[72] == 0xcd && s32[139] == 0xcd && s32[140] == 0)

        var p = CoreProcessFacts()
        p.state = "S"
        p.ids.pid = 42
        p.uid = 1000
        p.command = "a-very-long-command-name"
        p.arguments = Array("prog\u{0}arg\u{0}".utf8)
        let ps = format64.prpsinfo(p)
        #expect(ps.count == 136)
        #expect(ps[0] == 1 && ps[1] == UInt8(ascii: "S"))
        #expect(le(ps[16..<20]) == 1000 && le(ps[24..<28]) == 42)
        #expect(Array(ps[40..<56]) == Array("a-very-long-com".utf8) + [0])
        #expect(Array(ps[56..<65]) == Array("prog arg".utf8) + [0])
        let ps32 = format32.prpsinfo(p)
        #expect(ps32.count == 124)
        #expect(le(ps32[8..<10]) == 1000 && le(ps32[12..<16]) == 42)
        #expect(Array(ps32[28..<31]) == Array("a-v".utf8))
    }

    @Test func fileNoteCountsPagesAndEndsWithTheNames() {
        let files = [
            CoreFileEntry(start: 0x1000, end: 0x3000, offset: 0x2000, name: "/bin/a"),
            CoreFileEntry(start: 0x5000, end: 0x6000, offset: 0, name: "/lib/b (deleted)"),
        ]
        let n = format32.fileNote(files)
        #expect(le(n[0..<4]) == 2 && le(n[4..<8]) == 4096)
        #expect(le(n[8..<12]) == 0x1000 && le(n[12..<16]) == 0x3000 && le(n[16..<20]) == 2)
        #expect(Array(n[32...]) == Array("/bin/a\u{0}/lib/b (deleted)\u{0}".utf8))
    }

    @Test func signalInfoOfA32BitThreadMovesTheUnion() {
        var info = [UInt8](repeating: 0, count: 128)
        info[0] = 11  // SIGSEGV
        info[8] = 1  // SEGV_MAPERR
        info[16] = 0x78
        info[17] = 0x56
        info[18] = 0x34
        info[19] = 0x12
        let converted = format32.signalInfo(info)
        #expect(converted.count == 128)
        #expect(converted[0] == 11 && converted[8] == 1)
        #expect(le(converted[12..<16]) == 0x1234_5678, "si_addr at 12")
        #expect(format64.signalInfo(info) == info)
    }

    @Test func notesPutProcessNotesAfterTheFirstThreadsStatus() {
        var a = CoreThreadFacts()
        a.ids.pid = 1
        a.registerSets = [.init(type: CoreNoteType.fpregset, bytes: [0, 0, 0, 0])]
        var b = a
        b.ids.pid = 2
        b.signalInfo = [UInt8](repeating: 0, count: 128)
        let notes = format64.notes(process: CoreProcessFacts(), threads: [a, b], auxv: [1, 2, 3, 4], files: [])
        var types: [UInt32] = []
        var at = 0
        while at < notes.count {
            let nameSize = Int(le(notes[at..<at + 4])), size = Int(le(notes[at + 4..<at + 8]))
            types.append(UInt32(le(notes[at + 8..<at + 12])))
            at += 12 + (nameSize + 3) / 4 * 4 + (size + 3) / 4 * 4
        }
        #expect(at == notes.count)
        #expect(types == [1, 3, 6, 0x4649_4c45, 2, 1, 2, 0x5349_4749])
    }

    @Test func filterDecidesLikeTheKernel() {
        let never = { () -> Bool in
            Issue.record("asked for an ELF header"); return false
        }
        let def = CoredumpFilter.kernelDefault
        func content(
            _ m: Mapping, _ flags: Set<String> = [], anon: UInt64? = 4096, filter: CoredumpFilter = def,
            elf: @escaping () -> Bool = never
        ) -> CoreContent {
            CoreMappingFacts(mapping: m, vmFlags: flags, anonymousBytes: anon).content(
                filter: filter, startsWithELFHeader: elf)
        }
        #expect(content(mapping("rw-p")) == .whole)
        #expect(content(mapping("rw-p"), anon: 0) == .empty(.untouched))
        #expect(content(mapping("rw-p"), anon: nil) == .whole, "smaps unread: taken")
        #expect(content(mapping("rw-p"), filter: []) == .empty(.filter))
        #expect(content(mapping("rw-p"), ["dd"]) == .empty(.dontDump))
        #expect(content(mapping("---p")) == .empty(.unreadable))
        #expect(content(mapping("r--p", path: "[vvar]")) == .empty(.kernelData))
        #expect(content(mapping("r-xp", path: "[vdso]"), filter: []) == .whole)
        #expect(content(mapping("rw-s", path: "/dev/zero", inode: 5, deleted: true)) == .whole, "anonymous shared")
        #expect(content(mapping("rw-s", path: "/data/file", inode: 5)) == .empty(.filter), "bit 3 off")
        #expect(content(mapping("rw-s", path: "/data/file", inode: 5), filter: [.fileShared]) == .whole)
        #expect(content(mapping("rw-s", path: "/dev/zero", inode: 5, deleted: true), ["ht"]) == .empty(.filter))
        #expect(content(mapping("rw-p"), ["ht"]) == .whole, "hugetlb private: bit 5")
        #expect(content(mapping("rw-p"), ["io"]) == .empty(.io))
        // Private file mappings: written ones as anonymous memory, the text by bit 2 or its ELF header.
        let text = mapping("r-xp", path: "/bin/prog", inode: 9)
        #expect(content(mapping("rw-p", path: "/bin/prog", inode: 9, offset: 0x2000), anon: 8192) == .whole)
        #expect(content(text, anon: 0, elf: { true }) == .firstPage)
        #expect(content(text, anon: 0, elf: { false }) == .empty(.filter))
        #expect(content(text, anon: 0, filter: [.filePrivate]) == .whole)
        #expect(content(mapping("r-xp", path: "/bin/prog", inode: 9, offset: 0x1000), anon: 0) == .empty(.filter))
    }
}
