// The Linux layer on real processes, without the CLI: maps, the process_vm and /proc/PID/mem
// backends (exact counts and fault addresses), scattered reads, and Target's stream, copy
// and write.

import Foundation
import Testing
import VmIO
import VmioFixtures
import VmioPtrace
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

private func pattern(_ i: Int) -> UInt8 { UInt8((i * 131 + 7) & 0xff) }

private func bytes(hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        out.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return out
}

/// The holder's own view of `count` bytes at `address`.
private func holderGet(_ holder: FixtureProcess, _ address: UInt64, _ count: Int) throws -> [UInt8] {
    let reply = try holder.send("get 0x\(String(address, radix: 16)) \(count)")
    #expect(!reply.hasPrefix("error"), "\(reply)")
    return bytes(hex: reply)
}

/// Reads `count` bytes at `address` of `pid` with `backend` into a fresh array.
private func read(_ backend: some CopyBackend, _ pid: Int32, _ address: UInt64, _ count: Int) -> (Transfer, [UInt8]) {
    var buffer = [UInt8](repeating: 0xee, count: count)
    let transfer = buffer.withUnsafeMutableBytes { backend.read(pid: pid, at: address, into: $0) }
    return (transfer, buffer)
}

@Suite struct ProcessMapsTests {
    init() { settleSignalHandlers() }

    @Test func holderFactsTranslateWithTheirPermissions() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let view = try ProcessMaps.read(pid: holder.pid, generation: 7)
        #expect(view.generation == 7)
        #expect(view.mappingsAreDisjoint)
        let buf = holder.address("buf"), edge = holder.address("edge"), guardPage = holder.address("guard")
        let ro = holder.address("ro"), code = holder.address("code"), counter = holder.address("counter")

        let bufT = try #require(view.translate(buf))
        #expect(bufT.mapping.permissions.description == "rw-p")
        #expect(bufT.offset == buf - bufT.mapping.start)
        #expect(view.writable(try AddressRange(start: buf, count: 65536)))
        #expect(view.translate(edge)?.mapping.permissions.description == "rw-p")
        #expect(view.translate(edge + 4095) != nil)
        #expect(view.translate(edge + 4096) == nil, "a hole after edge")
        #expect(!view.covers(try AddressRange(start: edge, count: 4097)))
        #expect(view.firstAddress(in: try AddressRange(start: edge, count: 8192)) == edge + 4096)
        let guardT = try #require(view.translate(guardPage))
        #expect(guardT.mapping.permissions.description == "---p")
        #expect(guardT.mapping.start == guardPage && guardT.mapping.end == guardPage + 4096)
        #expect(!view.readable(try AddressRange(start: guardPage, count: 1)))
        let roT = try #require(view.translate(ro))
        #expect(roT.mapping.permissions.description == "r--p")
        let roPage = try AddressRange(start: ro, count: 4096)
        #expect(view.readable(roPage) && !view.writable(roPage))
        let codeT = try #require(view.translate(code))
        #expect(codeT.mapping.permissions.description == "r-xp")
        #expect(codeT.mapping.path.hasSuffix("/vmio-fixture-holder"))
        #expect(codeT.mapping.basename == "vmio-fixture-holder")
        #expect(view.translate(counter)?.mapping.permissions.description == "rw-p")
        #expect(view.firstMapping(named: "[heap]") != nil && view.firstMapping(named: "[stack]") != nil)
        // The same number of lines as the kernel prints.
        #expect(view.mappings.count == procMapsLines(holder.pid).count)
    }

    @Test func aRefreshHasAHigherGenerationAndSeesChanges() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let target = try Target(pid: holder.pid)
        let first = target.view.generation
        let buf = holder.address("buf")
        #expect(target.view.translate(buf) != nil)
        #expect(try holder.send("unmap-buf") == "ok")
        let second = try target.refresh()
        #expect(second.generation > first)
        #expect(target.view.generation == second.generation)
        // buf may share its line with a neighbour, but its own 64 KiB are gone from the view.
        #expect(!second.covers(try AddressRange(start: buf, count: 65536)))
        #expect(try target.refresh().generation > second.generation)
    }

    @Test func manyMapsHasTenThousandSeparateMappings() throws {
        let many = try Fixtures.launch(.manyMaps)
        defer { many.terminate() }
        let view = try ProcessMaps.read(pid: many.pid)
        let base = many.address("base")
        #expect(view.mappings.count >= 10_000)
        for k in [0, 1, 4999, 9999] as [UInt64] {
            let t = try #require(view.translate(base + k * 8192 + 100))
            #expect(t.mapping.start == base + k * 8192 && t.mapping.end == base + k * 8192 + 4096)
            #expect(view.translate(base + k * 8192 + 4096) == nil)
        }
    }

    /// A big maps file is read in pieces, each handed on while the next is read: every piece
    /// handed on is a prefix of the whole text, each longer than the last, and the view is
    /// the whole text's.
    @Test func aBigMapsFileIsParsedWhileItIsRead() throws {
        let many = try Fixtures.launch(.manyMaps)
        defer { many.terminate() }
        let path = "/proc/\(many.pid)/maps"
        var prefixes: [[UInt8]] = []
        let whole = try ProcFS.withContents(of: path, whileReading: { prefixes.append(Array($0)) }) { Array($0) }
        #expect(whole == (try ProcFS.readAll(path)), "the fixture's maps stand still")
        #expect(prefixes.count >= 2, "\(whole.count) bytes in \(prefixes.count) pieces")
        for (earlier, later) in zip([[]] + prefixes, prefixes) {
            #expect(later.count > earlier.count && whole.starts(with: later))
        }
        let view = try ProcessMaps.read(pid: many.pid)
        #expect(
            view.mappings == (try whole.withUnsafeBytes { raw throws(VmIoError) in try MapsParser.parseMappings(raw) }))
        // A small file is one read, handed on whole to the body alone.
        var small = 0
        _ = try ProcFS.withContents(of: "/proc/self/status", whileReading: { _ in small += 1 }) { $0.count }
        #expect(small == 0)
    }

    @Test func aMissingProcessIsNoSuchProcess() throws {
        #expect(throws: TargetError.noSuchProcess(pid: 999_999)) { try ProcessMaps.read(pid: 999_999) }
        #expect(throws: TargetError.noSuchProcess(pid: 999_999)) { try Target(pid: 999_999) }
    }
}

@Suite struct BackendTests {
    init() { settleSignalHandlers() }

    @Test func processVMReadStopsAtTheExactPage() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let edge = holder.address("edge"), guardPage = holder.address("guard")
        let backend = ProcessVMBackend()
        let (t, data) = read(backend, holder.pid, edge + 1000, 8192)
        #expect(t.moved == 3096)
        #expect(t.stop == .pageFault(address: edge + 4096))
        #expect(data[0..<3096].allSatisfy { $0 == 0xab })
        #expect(data[3096...].allSatisfy { $0 == 0xee }, "nothing past the moved bytes is touched")

        let (g, gdata) = read(backend, holder.pid, guardPage, 64)
        #expect(g.moved == 0 && g.stop == .pageFault(address: guardPage))
        #expect(gdata.allSatisfy { $0 == 0xee })
        // Ending just before the guard: all of it; crossing into it: exactly up to it.
        #expect(read(backend, holder.pid, guardPage - 64, 64).0 == Transfer(moved: 64, stop: nil))
        #expect(
            read(backend, holder.pid, guardPage - 10, 20).0 == Transfer(moved: 10, stop: .pageFault(address: guardPage))
        )

        let buf = holder.address("buf")
        let (whole, wdata) = read(backend, holder.pid, buf, 65536)
        #expect(whole == Transfer(moved: 65536, stop: nil))
        #expect(wdata[0x100..<0x110].elementsEqual("VMIO-MARKER-0001".utf8))
        #expect(wdata[0x400] == pattern(0x400))
    }

    @Test func processVMWriteLandsAndFaultsExactly() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf"), edge = holder.address("edge")
        let backend = ProcessVMBackend()
        let payload: [UInt8] = Array("written by the backend".utf8)
        let t = payload.withUnsafeBytes { backend.write(pid: holder.pid, at: buf + 0x800, from: $0) }
        #expect(t == Transfer(moved: payload.count, stop: nil))
        #expect(try holderGet(holder, buf + 0x800, payload.count) == payload)
        let long = [UInt8](repeating: 0x33, count: 200)
        let partial = long.withUnsafeBytes { backend.write(pid: holder.pid, at: edge + 4000, from: $0) }
        #expect(partial == Transfer(moved: 96, stop: .pageFault(address: edge + 4096)))
        #expect(try holderGet(holder, edge + 4000, 96) == [UInt8](repeating: 0x33, count: 96))
    }

    @Test func aDeadProcessIsTargetGone() throws {
        let holder = try Fixtures.launch(.holder)
        let pid = holder.pid, buf = holder.address("buf")
        holder.terminate()
        #expect(kill(pid, 0) == -1)
        let (t, _) = read(ProcessVMBackend(), pid, buf, 16)
        #expect(t == Transfer(moved: 0, stop: .targetGone))
        let w = [UInt8](repeating: 0, count: 16).withUnsafeBytes {
            ProcessVMBackend().write(pid: pid, at: buf, from: $0)
        }
        #expect(w == Transfer(moved: 0, stop: .targetGone))
    }

    @Test func scatteredReadOfTenThousandPages() throws {
        let many = try Fixtures.launch(.manyMaps)
        defer { many.terminate() }
        let base = many.address("base"), count = Int(many.number("count"))
        #expect(count == 10_000)
        var words = [UInt64](repeating: .max, count: count)
        let results = words.withUnsafeMutableBytes { raw -> [Transfer] in
            var pieces: [ProcessVMBackend.Piece] = []
            for k in 0..<count {
                let slot = UnsafeMutableRawBufferPointer(rebasing: raw[(k * 8)..<(k * 8 + 8)])
                pieces.append(ProcessVMBackend.Piece(address: base + UInt64(k) * 8192, destination: slot))
            }
            return ProcessVMBackend().readScattered(pid: many.pid, pieces)
        }
        #expect(results.count == count)
        #expect(results.allSatisfy { $0 == Transfer(moved: 8, stop: nil) })
        let wrong = words.enumerated().filter { $0.element != UInt64($0.offset) }
        #expect(wrong.isEmpty, "first wrong: \(wrong.prefix(5))")
    }

    @Test func aScatteredPieceInAHoleFaultsAlone() throws {
        let many = try Fixtures.launch(.manyMaps)
        defer { many.terminate() }
        let base = many.address("base")
        // Pieces: pages 0…2999 with piece 1500 pointing at the hole after page 1500, piece
        // 2000 crossing from page 2000 into its hole, and the last piece starting in a hole.
        let count = 3000
        var out = [UInt8](repeating: 0xee, count: count * 16)
        var addresses = (0..<count).map { base + UInt64($0) * 8192 }
        addresses[1500] = base + 1500 * 8192 + 4096
        addresses[2000] = base + 2000 * 8192 + 4096 - 5
        addresses[count - 1] = base + UInt64(count - 1) * 8192 + 5000
        let results = out.withUnsafeMutableBytes { raw -> [Transfer] in
            var pieces: [ProcessVMBackend.Piece] = []
            for k in 0..<count {
                let slot = UnsafeMutableRawBufferPointer(rebasing: raw[(k * 16)..<(k * 16 + 16)])
                pieces.append(ProcessVMBackend.Piece(address: addresses[k], destination: slot))
            }
            return ProcessVMBackend().readScattered(pid: many.pid, pieces)
        }
        for k in 0..<count {
            switch k {
            case 1500:
                #expect(results[k] == Transfer(moved: 0, stop: .pageFault(address: addresses[k])))
                #expect(out[(k * 16)..<(k * 16 + 16)].allSatisfy { $0 == 0xee })
            case 2000:
                #expect(results[k] == Transfer(moved: 5, stop: .pageFault(address: base + 2000 * 8192 + 4096)))
                #expect(Array(out[(k * 16)..<(k * 16 + 5)]) == [UInt8](repeating: UInt8(2000 & 0xff), count: 5))
            case count - 1:
                #expect(results[k] == Transfer(moved: 0, stop: .pageFault(address: addresses[k])))
            default:
                #expect(results[k] == Transfer(moved: 16, stop: nil), "piece \(k)")
                let word = out[(k * 16)..<(k * 16 + 8)].enumerated().reduce(UInt64(0)) {
                    $0 | UInt64($1.element) << (8 * UInt64($1.offset))
                }
                #expect(word == UInt64(k), "piece \(k)")
                #expect(out[(k * 16 + 8)..<(k * 16 + 16)].allSatisfy { $0 == UInt8(k & 0xff) })
            }
        }
    }

    @Test func procMemReadMatchesProcessVM() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf"), edge = holder.address("edge"), code = holder.address("code")
        var memory = ProcessMemory(pid: holder.pid)
        let vm = ProcessVMBackend()
        /// `/proc/PID/mem` alone: what a forced write is read back with.
        func viaProcMem(_ address: UInt64, _ count: Int) -> (Access, [UInt8]) {
            var buffer = [UInt8](repeating: 0xee, count: count)
            let access = buffer.withUnsafeMutableBytes { memory.readForced(at: address, into: $0) }
            return (access, buffer)
        }
        for (address, count) in [(buf, 65536), (buf + 0x1ff, 17), (code, 64), (edge, 4096)] {
            let a = read(vm, holder.pid, address, count), b = viaProcMem(address, count)
            #expect(a.0 == Transfer(moved: count, stop: nil) && b.0.moved == count && b.0.stop == nil)
            #expect(b.0.mechanism == .pread)
            #expect(a.1 == b.1, "at \(address.hex)")
        }
        // Into the hole: the same exact count, and EIO (how /proc/PID/mem says "unmapped").
        let a = read(vm, holder.pid, edge + 1000, 8192), b = viaProcMem(edge + 1000, 8192)
        #expect(a.0 == Transfer(moved: 3096, stop: .pageFault(address: edge + 4096)))
        #expect(b.0.moved == 3096 && b.0.stop?.errno == .ioError && b.0.stop?.mechanism == .pread, "\(b.0)")
        #expect(a.1 == b.1)
    }

    @Test func theLadderStepsDownOnlyWhereTheViewAllows() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let view = try ProcessMaps.read(pid: holder.pid)
        var memory = ProcessMemory(pid: holder.pid)
        let guardPage = holder.address("guard")
        var buffer = [UInt8](repeating: 0xee, count: 256)
        // process_vm_readv moves the bytes; a short count is EFAULT at the exact page.
        let whole = buffer.withUnsafeMutableBytes {
            memory.read(at: guardPage - 128, into: $0, view: view, stoppedThread: nil)
        }
        #expect(whole.moved == 128 && whole.mechanism == .processVMReadv)
        #expect(whole.stop?.errno == .badAddress && whole.stop?.mechanism == .processVMReadv)
        #expect(memory.refused.isEmpty, "a fault is no refusal")
        // A typed value takes one pread where the view says every byte is readable.
        let small = buffer.withUnsafeMutableBytes {
            memory.read(
                at: holder.address("buf") + 0x200, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<8]),
                view: view)
        }
        #expect(small == Access(moved: 8, mechanism: .pread))
        #expect(buffer[0..<8] == [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
    }

    @Test func procMemForcedWriteIntoCode() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let code = holder.address("code")
        #expect(try holder.send("answer") == "42")
        let patch: [UInt8] = [0xb8, 0x07, 0x00, 0x00, 0x00, 0xc3]  // mov eax, 7; ret
        // process_vm_writev refuses read-only text.
        let refused = patch.withUnsafeBytes { ProcessVMBackend().write(pid: holder.pid, at: code, from: $0) }
        #expect(refused.moved == 0 && refused.stop != nil)
        var memory = ProcessMemory(pid: holder.pid)
        let direct = patch.withUnsafeBytes { memory.write(at: code, from: $0, route: .direct) }
        #expect(direct.moved == 0 && direct.stop?.mechanism == .processVMWritev)
        #expect(try holder.send("answer") == "42")
        try memory.prepareForcedWrites()
        let forced = patch.withUnsafeBytes { memory.write(at: code, from: $0, route: .forced) }
        #expect(forced == Access(moved: 6, mechanism: .pwrite))
        #expect(try holderGet(holder, code, 6) == patch)
        #expect(try holder.send("answer") == "7")
    }
}

@Suite struct TargetTests {
    init() { settleSignalHandlers() }

    @Test func streamOverTheEdgeWithoutAndWithSkipFaults() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let edge = holder.address("edge")
        let target = try Target(pid: holder.pid)
        let range = try AddressRange(start: edge, count: 3 * 4096)

        var chunks: [(UInt64, [UInt8])] = []
        let stopped = try target.stream(range, skipFaults: false) { at, chunk in
            chunks.append((at, Array(chunk)))
            return true
        }
        #expect(stopped.requested == 3 * 4096)
        #expect(stopped.moved == 4096)
        #expect(stopped.holes.isEmpty)
        #expect(stopped.stop?.faultAddress == edge + 4096)
        #expect(stopped.stop?.copied == 4096)
        #expect(!stopped.isComplete)
        #expect(chunks.map(\.0) == [edge])
        #expect(chunks.first?.1 == [UInt8](repeating: 0xab, count: 4096))

        chunks = []
        let skipped = try target.stream(range, skipFaults: true) { at, chunk in
            chunks.append((at, Array(chunk)))
            return true
        }
        #expect(skipped.moved == 4096)
        #expect(skipped.stop == nil)
        #expect(skipped.holes.map(\.address) == [edge + 4096])
        #expect(skipped.holes.map(\.length) == [8192])
        #expect(!skipped.isComplete)
        #expect(chunks.map(\.0) == [edge])

        // Starting inside the page: the partial page and then the hole, exactly.
        let mid = try target.stream(try AddressRange(start: edge + 1000, count: 3 * 4096), skipFaults: true) { _, _ in
            true
        }
        #expect(mid.moved == 3096)
        #expect(mid.holes.map(\.address) == [edge + 4096])
        #expect(mid.holes.map(\.length) == [3 * 4096 - 3096])
    }

    @Test func streamOverManyHolesListsEachOne() throws {
        let many = try Fixtures.launch(.manyMaps)
        defer { many.terminate() }
        let base = many.address("base")
        let target = try Target(pid: many.pid)
        var seen: [UInt64: UInt8] = [:]
        let report = try target.stream(try AddressRange(start: base, count: 10 * 8192), skipFaults: true) { at, chunk in
            #expect((at - base) % 8192 == 0 && chunk.count == 4096)
            seen[(at - base) / 8192] = chunk[8]
            return true
        }
        #expect(report.moved == 10 * 4096)
        #expect(report.holes.count == 10)
        #expect(report.holes.map(\.address) == (0..<10).map { base + $0 * 8192 + 4096 })
        #expect(report.holes.allSatisfy { $0.length == 4096 })
        #expect(seen == Dictionary(uniqueKeysWithValues: (0..<10).map { (UInt64($0), UInt8($0)) }))
    }

    @Test func streamOfTheGuardPage() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let guardPage = holder.address("guard")
        let target = try Target(pid: holder.pid)
        var calls = 0
        let report = try target.stream(try AddressRange(start: guardPage, count: 100), skipFaults: false) { _, _ in
            calls += 1
            return true
        }
        #expect(report.moved == 0)
        #expect(report.stop?.faultAddress == guardPage)
        #expect(calls == 0)
    }

    @Test func copyBetweenTwoHolders() throws {
        let a = try Fixtures.launch(.holder), b = try Fixtures.launch(.holder)
        defer { a.terminate(); b.terminate() }
        let aBuf = a.address("buf"), bBuf = b.address("buf")
        let source = try Target(pid: a.pid), destination = try Target(pid: b.pid)
        _ = try source.write(Array("only in A".utf8), at: aBuf + 0x40, force: false, verify: true)
        let report = try destination.copy(from: source, at: aBuf, to: bBuf + 0x8000, count: 0x2000, skipFaults: false)
        #expect(report.isComplete)
        #expect(report.moved == 0x2000)
        #expect(try holderGet(b, bBuf + 0x8000, 0x2000) == holderGet(a, aBuf, 0x2000))
        #expect(try holderGet(b, bBuf + 0x8040, 9) == Array("only in A".utf8))
        #expect(try holderGet(b, bBuf + 0x7fff, 1) == [pattern(0x7fff)])
        #expect(try holderGet(b, bBuf + 0xa000, 1) == [pattern(0xa000)])

        // From the edge into the hole: exactly the mapped part.
        let edge = a.address("edge")
        let partial = try destination.copy(from: source, at: edge + 4000, to: bBuf, count: 200, skipFaults: false)
        #expect(partial.moved == 96)
        #expect(partial.stop?.faultAddress == edge + 4096)
        #expect(partial.stop?.side == .source)
        #expect(try holderGet(b, bBuf, 100) == [UInt8](repeating: 0xab, count: 96) + (96..<100).map(pattern))
        // The destination range must lie in mappings: nothing is written otherwise.
        #expect(throws: TargetError.model(.rangeNotCovered(address: edge + 4096))) {
            try source.copy(from: destination, at: bBuf, to: edge + 4000, count: 200, skipFaults: false)
        }
        #expect(try holderGet(a, edge + 4000, 96) == [UInt8](repeating: 0xab, count: 96))
    }

    @Test func writeWithVerify() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        let target = try Target(pid: holder.pid)
        let payload = (0..<5000).map { UInt8(($0 * 3) & 0xff) }
        let report = try target.write(payload, at: buf + 0x3001, force: false, verify: true)
        #expect(report.requested == 5000 && report.written == 5000)
        #expect(report.verified && report.mismatch == nil)
        #expect(try holderGet(holder, buf + 0x3001, 5000) == payload)
        #expect(try holderGet(holder, buf + 0x3000, 1) == [pattern(0x3000)])

        // Read-only code without force: refused, untouched; with force: patched.
        let code = holder.address("code")
        let before = try holderGet(holder, code, 6)
        let refused = #expect(throws: TargetError.self) {
            try target.write([0xb8, 0x07, 0, 0, 0, 0xc3], at: code, force: false, verify: false)
        }
        #expect(try holderGet(holder, code, 6) == before)
        if case .permissionDenied(let pid, _, let reason) = refused {
            #expect(pid == holder.pid && reason.contains("r-xp"), "\(reason)")
        } else {
            Issue.record("expected permissionDenied naming r-xp, got \(String(describing: refused))")
        }
        let forced = try target.write([0xb8, 0x07, 0, 0, 0, 0xc3], at: code, force: true, verify: true)
        #expect(forced.written == 6 && forced.verified && forced.mismatch == nil)
        #expect(try holder.send("answer") == "7")
        // Across the end of a mapping: bad input, nothing written.
        let edge = holder.address("edge")
        #expect(throws: TargetError.model(.rangeNotCovered(address: edge + 4096))) {
            try target.write([UInt8](repeating: 0, count: 200), at: edge + 4000, force: false, verify: false)
        }
        #expect(try holderGet(holder, edge + 4000, 96) == [UInt8](repeating: 0xab, count: 96))
    }
}
