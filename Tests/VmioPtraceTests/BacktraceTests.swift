// The pieces of the unwinder that need no ptrace attach: the page cache behind the
// unwinder's memory reader (process_vm_readv only) and the unwind end reasons.
// Unwinding itself attaches, and the test process, as the fixture's parent, would race
// Foundation's Process for the ptrace stops; it is tested through the binary in
// Tests/CLITests/BacktraceCLITests.swift, where another process is the tracer.

import Foundation
import Testing
import VmIO
import VmioFixtures
import VmioPtrace
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct BacktraceTests {
    @Test func pageCacheReadsWordsOfTheHolder() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        let cache = PageCache(pid: holder.pid, pages: 4)
        #expect(cache.word(at: buf + 0x200) == 0x1122_3344_5566_7788)
        #expect(cache.stats.pageReads == 1 && cache.stats.hits == 0)
        // The same page again: a hit, no syscall.
        let marker = try #require(cache.word(at: buf + 0x100))
        #expect(withUnsafeBytes(of: marker.littleEndian, Array.init) == Array("VMIO-MAR".utf8))
        #expect(cache.stats.pageReads == 1 && cache.stats.hits == 1)
        // Unaligned, and across a page boundary (bytes 4092..4099 of buf).
        let across = try #require(cache.word(at: buf + 4092))
        let expected = (0..<8).map { UInt8(((4092 + $0) * 131 + 7) & 0xff) }
        #expect(withUnsafeBytes(of: across.littleEndian, Array.init) == expected)
        #expect(cache.stats.pageReads == 2)
        #expect(cache.stats.wordReads == 3)
    }

    @Test func pageCacheEvictsAndForgets() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        let cache = PageCache(pid: holder.pid, pages: 2)
        for page in 0..<3 { _ = cache.word(at: buf + UInt64(page) * 4096) }
        #expect(cache.stats.pageReads == 3)
        _ = cache.word(at: buf)  // evicted by the third page (two slots)
        #expect(cache.stats.pageReads == 4)
        cache.invalidate()
        _ = cache.word(at: buf)
        #expect(cache.stats.pageReads == 5, "invalidate empties the cache")
    }

    @Test func pageCacheFailsCleanlyOnUnreadableMemory() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let cache = PageCache(pid: holder.pid)
        // Not traced, so the PTRACE_PEEKDATA fallback fails too: nil, never a crash.
        #expect(cache.word(at: holder.address("guard")) == nil)
        #expect(cache.word(at: holder.address("edge") + 4096) == nil)
        #expect(cache.word(at: holder.address("edge") + 4092) == nil, "a word running into the hole")
        #expect(cache.stats.failures == 3)
        #expect(!cache.sawTargetGone)
        #expect(cache.word(at: holder.address("ro")) == 0x5a5a_5a5a_5a5a_5a5a)
    }

    @Test func pageCacheNoticesATargetThatIsGone() throws {
        let holder = try Fixtures.launch(.holder)
        let buf = holder.address("buf"), pid = holder.pid
        holder.terminate()
        let cache = PageCache(pid: pid)
        #expect(cache.word(at: buf) == nil)
        #expect(cache.sawTargetGone)
    }

    @Test func unwindEndsDescribeThemselves() {
        #expect(UnwindEnd.endOfStack.kind == "end" && UnwindEnd.endOfStack.description == "end of stack")
        #expect(
            UnwindEnd.depthLimit(5).kind == "depth-limit"
                && UnwindEnd.depthLimit(5).description == "depth limit 5 reached")
        #expect(UnwindEnd.loop(pc: 0x10, sp: 0x20).description == "loop: pc 0x10 with sp 0x20 repeats")
        #expect(UnwindEnd.error("bad frame").kind == "error")
    }

    @Test func registersKeepTheirOrder() {
        #expect(Registers.names.count == 27)
        #expect(Registers.names.prefix(3) == ["rip", "rsp", "rbp"])
        #expect(Set(Registers.names).count == 27)
        #expect(Registers.names.suffix(3) == ["fs_base", "gs_base", "orig_rax"])
    }
}
