import PropertyBased
import Testing

@testable import VmIO

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

// The maps parser: this process's own /proc/self/maps, a synthetic 10,000-line text,
// every form the kernel prints, and malformed text (an error naming the line, never a crash).

/// The whole of a /proc file, read with one large read() a time (the kernel fills each
/// read under one lock, so the text is as consistent as it can be).
private func readProcFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        out += buffer[0..<n]
    }
    return out
}

private func selfExePath() -> String? {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard n > 0 else { return nil }
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Whether `error` is a maps syntax error on `line`.
private func isSyntax(_ error: VmIoError, line: Int) -> Bool {
    if case .mapsSyntax(let l, _, _) = error { return l == line }
    return false
}

/// A maps line as the kernel prints it (`show_map_vma`): `%08lx-%08lx %s %08llx %02x:%02x %lu `,
/// then, when there is a name, padding to column 74 and the name (newlines as `\012`).
/// `padded: false` gives the canonical single-space form `Mapping.description` prints.
private func kernelLine(_ m: Mapping, padded: Bool = true) -> String {
    func hex(_ v: UInt64, _ digits: Int) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, digits - s.count)) + s
    }
    var line = hex(m.start, 8) + "-" + hex(m.end, 8) + " " + m.permissions.description
    line += " " + hex(m.offset, 8) + " " + hex(UInt64(m.device.major), 2) + ":" + hex(UInt64(m.device.minor), 2)
    line += " " + String(m.inode)
    guard !m.path.isEmpty || m.isDeleted else { return padded ? line + " " : line }
    line += " "
    if padded { line += String(repeating: " ", count: max(0, 73 - line.utf8.count)) }
    line += m.path.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\\012")
    return line + (m.isDeleted ? " (deleted)" : "")
}

@Suite("Maps parser")
struct MapsParserTests {

    @Test("this process's own /proc/self/maps")
    func ownMaps() throws {
        let heapObject = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        defer { heapObject.deallocate() }
        var local: UInt64 = 42
        // The maps text may change between read() calls while other tests mmap; retry a few times.
        var attempt = 0
        var parsed: (text: String, view: MemView)?
        while parsed == nil && attempt < 5 {
            attempt += 1
            guard let bytes = readProcFile("/proc/self/maps") else {
                Issue.record("cannot read /proc/self/maps"); return
            }
            let text = String(decoding: bytes, as: UTF8.self)
            do throws(VmIoError) {
                parsed = (text, try MapsParser.parse(text, generation: 3))
                // The byte-level entry point agrees.
                let again: Result<MemView, VmIoError> = bytes.withUnsafeBytes { raw in
                    Result { () throws(VmIoError) in try MapsParser.parse(bytes: raw) }
                }
                #expect(try again.get().mappings == parsed!.view.mappings)
            } catch {
                if attempt == 5 { Issue.record("maps did not parse: \(error)") }
            }
        }
        guard let (text, view) = parsed else { return }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(lines.count == view.mappings.count, "one mapping a line")
        #expect(view.generation == 3)
        #expect(view.mappingsAreDisjoint, "sorted and disjoint")
        #expect(zip(view.mappings, view.mappings.dropFirst()).allSatisfy { $0.end <= $1.start })
        #expect(view.mappings.contains { $0.path == "[stack]" }, "[stack] is there")
        #expect(
            view.mappings.contains { $0.path == "[heap]" || $0.path.hasPrefix("[anon") || $0.path.isEmpty },
            "some heap-like anonymous memory is there")
        #expect(view.mappings.contains { $0.isSpecial })
        if let exe = selfExePath() {
            #expect(
                view.mappings.contains { $0.path == exe && $0.permissions.execute }, "the test binary's text is mapped")
        }
        // A local variable and a heap object land in readable, writable mappings.
        let stackAddress = withUnsafeMutablePointer(to: &local) { Address(UInt(bitPattern: $0)) }
        let heapAddress = Address(UInt(bitPattern: heapObject))
        for (what, address) in [("stack variable", stackAddress), ("heap object", heapAddress)] {
            let t = view.translate(address)
            #expect(t != nil, "the \(what) at \(address.hex) is in a mapping")
            #expect(t?.mapping.permissions.read == true && t?.mapping.permissions.write == true, "\(what) is rw")
            #expect(t.map { $0.mapping.start + $0.offset } == address)
        }
        // Each line parses alone to the same mapping, and the description re-parses to it.
        for (i, line) in lines.enumerated() {
            let m = try MapsParser.parseLine(String(line), lineNumber: i + 1)
            #expect(m == view.mappings[i])
            #expect(try MapsParser.parseLine(m.description) == m, "description round-trips: \(line)")
        }
    }

    @Test("a synthetic text of 10,000 mappings parses and round-trips through description")
    func tenThousand() throws {
        var rng = SplitMix(2024)
        let paths = [
            "", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/opt/My App/lib foo.so", "[heap]", "[anon:dalvik-main space]",
            "/dev/shm/ring", "/tmp/new\nline", "[vvar]", "[vdso]", "/memfd:wayland-cursor",
        ]
        var mappings: [Mapping] = []
        var address: Address = 0x0001_0000  // low addresses: the kernel pads them to eight digits
        for i in 0..<10_000 {
            address += UInt64.random(in: 0...2, using: &rng) * page
            let pages = UInt64.random(in: 1...64, using: &rng)
            let path = paths[Int.random(in: 0..<paths.count, using: &rng)]
            let file = path.hasPrefix("/")
            let bits = Int.random(in: 0...15, using: &rng)
            mappings.append(
                Mapping(
                    range: try AddressRange(start: address, count: pages * page),
                    permissions: Permissions(
                        read: bits & 1 != 0, write: bits & 2 != 0, execute: bits & 4 != 0, shared: bits & 8 != 0),
                    offset: file ? UInt64(i) * page : 0,
                    device: file
                        ? DeviceNumber(
                            major: UInt32.random(in: 0...0x1ff, using: &rng),
                            minor: UInt32.random(in: 0...0xff, using: &rng)) : .init(major: 0, minor: 0),
                    inode: file ? UInt64.random(in: 1...UInt64(UInt32.max), using: &rng) : 0,
                    path: path, isDeleted: file && Bool.random(using: &rng)))
            address += pages * page
        }
        // Half the lines in the kernel's padded layout, half as `description` prints them.
        let lines = mappings.enumerated().map { $0.offset % 2 == 0 ? kernelLine($0.element) : $0.element.description }
        let view = try MapsParser.parse(lines.joined(separator: "\n") + "\n")
        #expect(view.mappings.count == 10_000)
        #expect(view.mappings == mappings, "every field as generated")
        // Round trip: the descriptions parse back to the same view, and description is canonical.
        let again = try MapsParser.parse(view.mappings.map(\.description).joined(separator: "\n"))
        #expect(again.mappings == view.mappings)
        let notCanonical = view.mappings.filter { $0.description != kernelLine($0, padded: false) }
        #expect(notCanonical.isEmpty, "description is the kernel's line: \(notCanonical.prefix(3).map(\.description))")
        // translate by binary search agrees with a linear scan at every edge.
        for m in view.mappings.prefix(2000) {
            #expect(view.translate(m.start)?.mapping == m)
            #expect(view.translate(m.end - 1)?.mapping == m)
            if view.index(containing: m.end) == nil { #expect(view.translate(m.end) == nil) }
        }
    }

    @Test("every form the kernel prints")
    func realForms() throws {
        struct Case { let line: String; let check: (Mapping) -> Bool }
        let cases: [Case] = [
            Case(line: "7f2c4a1e0000-7f2c4a1e2000 r--p 00000000 08:01 1311 /home/user/My Documents/lib x.so") {
                $0.path == "/home/user/My Documents/lib x.so" && $0.isFileBacked && $0.basename == "lib x.so"
            },
            Case(line: "7ffd5c9f2000-7ffd5ca13000 rw-p 00000000 00:00 0 ") { $0.path.isEmpty && !$0.isDeleted },
            Case(line: "7ffd5c9f2000-7ffd5ca13000 rw-p 00000000 00:00 0") { $0.path.isEmpty && $0.inode == 0 },
            Case(line: "7f0000000000-7f0000021000 rw-s 00000000 00:01 2048                       /memfd:pool (deleted)")
            {
                $0.path == "/memfd:pool" && $0.isDeleted && $0.permissions.shared
            },
            Case(line: "7f0000000000-7f0000021000 rw-p 00000000 00:00 0                          [anon:libc_malloc]") {
                $0.path == "[anon:libc_malloc]" && $0.isSpecial && !$0.isFileBacked
            },
            Case(line: "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]") {
                $0.start == 0xffff_ffff_ff60_0000 && $0.end == 0xffff_ffff_ff60_1000 && $0.path == "[vsyscall]"
                    && $0.permissions == Permissions(read: false, write: false, execute: true, shared: false)
            },
            Case(line: "08048000-08056000 r-xp 00000000 03:0c 64593      /usr/sbin/gpm") {
                $0.start == 0x0804_8000 && $0.end == 0x0805_6000 && $0.device == DeviceNumber(major: 3, minor: 0xc)
                    && $0.inode == 64593
                    && $0.description == "08048000-08056000 r-xp 00000000 03:0c 64593 /usr/sbin/gpm"
            },
            Case(line: "55d0c0a00000-55d0c0a02000 r--p 00002000 103:02 9175047                   /usr/bin/cat") {
                $0.device == DeviceNumber(major: 0x103, minor: 2) && $0.offset == 0x2000
                    && $0.description.contains(" 103:02 ")
            },
            Case(line: "7f0000000000-7f0000001000 r--p 00000000 fd:01 7 /tmp/line\\012break") {
                $0.path == "/tmp/line\nbreak" && $0.description.hasSuffix("/tmp/line\\012break")
            },
            Case(line: "7f0000000000-7f0000001000 r--p 00000000 fd:01 7 /tmp/end\\012") { $0.path == "/tmp/end\n" },
            Case(line: "7f0000000000-7f0000001000 r--p 00000000 fd:01 7 /tmp/back\\slash") {
                $0.path == "/tmp/back\\slash"
            },
            Case(line: "7F0000000000-7F0000001000 R--P 00000000 FD:01 7 x") { _ in false },  // perms are lowercase only
            Case(line: "7F0000000000-7F0000001000 r--p 0000000A FD:01 7 x") {
                $0.start == 0x7f00_0000_0000 && $0.offset == 10 && $0.device.major == 0xfd
            },
            Case(line: "7fff12345000-7fff12366000 rw-p 00000000 00:00 0                          [stack]") {
                $0.path == "[stack]"
            },
        ]
        for (i, c) in cases.enumerated() {
            do throws(VmIoError) {
                let m = try MapsParser.parseLine(c.line, lineNumber: i + 1)
                #expect(c.check(m), "\(c.line) → \(m)")
                #expect(try MapsParser.parseLine(m.description) == m, "description round-trips: \(m.description)")
            } catch {
                #expect(c.line.contains("R--P"), "\(c.line): \(error)")
                #expect(isSyntax(error, line: i + 1))
            }
        }
    }

    @Test("malformed lines: mapsSyntax naming the line and column")
    func malformed() {
        let cases: [(String, Int)] = [
            ("", 1),
            ("00400000-00452000 r-xp 00000000 08:02", 38),  // missing inode
            ("00400000-00452000 r-xp 00000000 08:02 ", 39),  // missing inode, trailing space
            ("00400000-00452000 r-xp 00000000", 32),  // missing device and inode
            ("00400000-00452000", 18),  // missing everything after the range
            ("00400000 00452000 r-xp 00000000 08:02 1 /x", 9),  // no '-'
            ("0040000g-00452000 r-xp 00000000 08:02 1 /x", 8),  // bad hex
            ("00400000-0045200z r-xp 00000000 08:02 1 /x", 17),
            ("-00452000 r-xp 00000000 08:02 1 /x", 1),  // empty start
            ("00400000-00452000 rwzp 00000000 08:02 1 /x", 19),  // bad perms
            ("00400000-00452000 rwxq 00000000 08:02 1 /x", 22),  // fourth perms char
            ("00400000-00452000 rw 00000000 08:02 1 /x", 19),
            ("00400000-00452000 r-xp 0000000x 08:02 1 /x", 31),
            ("00400000-00452000 r-xp 00000000 08-02 1 /x", 35),  // no ':' in the device
            ("00400000-00452000 r-xp 00000000 08:02 x /x", 39),  // inode not decimal
            ("00400000-00452000 r-xp 00000000 08:02 12a /x", 41),
            ("00452000-00400000 r-xp 00000000 08:02 1 /x", 18),  // start > end
            ("00000000000400000-00452000 r-xp 00000000 08:02 1 /x", 17),  // 17-digit address
            ("00400000-000000000000452000 r-xp 00000000 08:02 1 /x", 26),
            ("00400000-00452000 r-xp 00000000 123456789:02 1 /x", 41),  // 9-digit device major
            ("00400000-00452000 r-xp 00000000 08:02 99999999999999999999 /x", 58),  // inode overflows
            ("00400000-00452000\tr-xp 00000000 08:02 1 /x", 18),
        ]
        for (line, column) in cases {
            do throws(VmIoError) {
                let m = try MapsParser.parseLine(line, lineNumber: 7)
                Issue.record("\(line) parsed as \(m)")
            } catch {
                guard case .mapsSyntax(let l, let c, let reason) = error else {
                    Issue.record("\(line): \(error)"); continue
                }
                #expect(l == 7, "\(line)")
                #expect(c == column, "\(line): column \(c) (\(reason))")
                #expect(!reason.description.isEmpty)
            }
        }
        #expect(throws: VmIoError.self) {
            _ = try MapsParser.parseLine("00400000-00452000 r-xp 00000000 08:02 1 /x\n/y")
        }
    }

    @Test("errors in a multi-line text name the right line; overlap and order are refused")
    func multiLine() throws {
        let good = [
            "00400000-00401000 r-xp 00000000 08:02 1 /bin/x",
            "00401000-00402000 rw-p 00001000 08:02 1 /bin/x",
            "00600000-00601000 rw-p 00000000 00:00 0 [heap]",
        ]
        #expect(try MapsParser.parse(good.joined(separator: "\n")).mappings.count == 3)
        // A bad line 3 is reported as line 3 (blank lines count as lines, and are skipped).
        for badIndex in 0..<3 {
            var lines = good
            lines[badIndex] = "zz"
            #expect(
                throws: VmIoError.mapsSyntax(
                    line: badIndex + 1, column: 1, reason: .expectedHex(.startAddress))
            ) {
                _ = try MapsParser.parse(lines.joined(separator: "\n"))
            }
        }
        var withBlank = good
        withBlank.insert("", at: 1)
        withBlank[3] = "00401000-00402000 rw-p"
        #expect(throws: (any Error).self) { _ = try MapsParser.parse(withBlank.joined(separator: "\n")) }
        do throws(VmIoError) {
            _ = try MapsParser.parse(withBlank.joined(separator: "\n"))
        } catch {
            #expect(isSyntax(error, line: 4), "\(error)")
        }
        // Overlapping and unsorted lines.
        let overlapping = [good[0], "00400800-00402000 rw-p 00001000 08:02 1 /bin/x", good[2]]
        #expect(throws: VmIoError.mappingsOverlap(index: 1)) {
            _ = try MapsParser.parse(overlapping.joined(separator: "\n"))
        }
        let unsorted = [good[0], good[2], good[1]]
        #expect(throws: VmIoError.mappingsUnsorted(index: 2)) {
            _ = try MapsParser.parse(unsorted.joined(separator: "\n"))
        }
        let duplicate = [good[0], good[0]]
        #expect(throws: VmIoError.mappingsOverlap(index: 1)) {
            _ = try MapsParser.parse(duplicate.joined(separator: "\n"))
        }
        // The same checks when a view is built from mappings directly.
        let ms = try good.map { try MapsParser.parseLine($0) }
        #expect(throws: VmIoError.mappingsUnsorted(index: 1)) { _ = try MemView(mappings: [ms[1], ms[0]]) }
        #expect(try MapsParser.parse("").mappings.isEmpty)
        #expect(try MapsParser.parse("\n\n").mappings.isEmpty)
    }

    @Test("random damage to a valid line: a mapping or a syntax error on that line, never a crash")
    func fuzz() async {
        let base =
            "7f2c4a1e0000-7f2c4a1e2000 r-xp 0001a000 103:02 1311                       /usr/lib/lib x.so (deleted)"
        let bytes = Array(base.utf8)
        let edit = zip(Gen.int(in: 0...3), Gen.int(in: 0...(bytes.count - 1)), Gen.uint8(in: 0...127))
        await propertyCheck(count: 500, input: edit.array(of: 1...4), Gen.int(in: 1...50_000)) { edits, lineNumber in
            var line = bytes
            for (kind, at, byte) in edits {
                let i = min(at, max(0, line.count - 1))
                switch kind {
                case 0 where !line.isEmpty: line[i] = byte
                case 1 where !line.isEmpty: line.remove(at: i)
                case 2: line.insert(byte, at: min(i, line.count))
                default: line = Array(line.prefix(i))
                }
            }
            line.removeAll { $0 == UInt8(ascii: "\n") }
            let text = String(decoding: line, as: UTF8.self)
            do throws(VmIoError) {
                let m = try MapsParser.parseLine(text, lineNumber: lineNumber)
                #expect(m.range.isWellFormed)
            } catch {
                guard case .mapsSyntax(let l, let c, _) = error else { Issue.record("\(error)"); return }
                #expect(l == lineNumber)
                #expect(c >= 1 && c <= text.utf8.count + 1, "column inside the line")
            }
            // The same line inside a text, preceded by a good one.
            let doc = "00001000-00002000 r--p 00000000 00:00 0\n" + text
            do throws(VmIoError) {
                _ = try MapsParser.parse(doc)
            } catch {
                switch error {
                case .mapsSyntax(let l, _, _): #expect(l == 2)
                case .mappingsOverlap(let i), .mappingsUnsorted(let i): #expect(i == 1)
                default: Issue.record("unexpected \(error)")
                }
            }
        }
    }

    @Test("the one-pass parse gives what the line-by-line parse gives, or leaves the text to it")
    func onePassAgreesWithLineByLine() async {
        let good = [
            "00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/dbus-daemon",
            "7f2c4a1e0000-7f2c4a1e2000 r-xp 0001a000 103:02 1311                       /usr/lib/lib x.so (deleted)",
            "7f2c4a1e2000-7f2c4a1e3000 r--p 0001c000 103:02 1311                       /usr/lib/lib x.so (deleted)",
            "7ffd5a3e0000-7ffd5a401000 rw-p 00000000 00:00 0                          [stack]",
            "7f68043bb000-7f680447f000 rw-p 00000000 00:00 0 ", "7f68043bb000-7f680447f000 rw-s 00000000 00:00 0",
            "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]",
            "7f2c4a1e0000-7f2c4a1e2000 r--p 00000000 fd:01 42 /tmp/new\\012line (deleted)",
            "7f2c4a1e0000-7f2c4a1e2000 rw-p 00000000 00:00 0                          [anon:ré seau]",
            "08048000-08049000 R-XP 00000000 08:01 1 /x",
            "08048000-08049000 r-xp 00000000 08:01 99999999999999999999 /x",
            "", "12345678-12345679 r--p 00000000 00:00 0 \r",
        ]
        let lines = Gen.int(in: 0...(good.count - 1)).array(of: 1...6)
        let edit = zip(Gen.int(in: 0...200), Gen.uint8(in: 0...127))
        await propertyCheck(count: 500, input: lines, edit.array(of: 0...2)) { picked, edits in
            var bytes = Array(picked.map { good[$0] }.joined(separator: "\n").utf8)
            for (at, byte) in edits where !bytes.isEmpty { bytes[at % bytes.count] = byte }
            bytes.withUnsafeBytes { raw in
                let carefully = Result { () throws(VmIoError) in try MapsParser.parseLineByLine(raw) }
                guard let fast = MapsParser.parseWellFormed(raw) else { return }
                #expect((try? carefully.get()) == fast, "\(String(decoding: bytes, as: UTF8.self))")
            }
        }
        // The forms the kernel prints take the one pass (a `\012` and a 20-digit inode do not).
        for line in good.prefix(7) + good[8...8] {
            #expect(Array(line.utf8).withUnsafeBytes { MapsParser.parseWellFormed($0) } != nil, "\(line)")
        }
    }

    @Test("lines parsed as the text comes in pieces give what the whole text gives, errors too")
    func piecesAgreeWithTheWholeText() async {
        let good = [
            "00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/dbus-daemon",
            "00452000-00453000 r--p 00052000 08:02 173521      /usr/bin/dbus-daemon",
            "7f2c4a1e0000-7f2c4a1e2000 r-xp 0001a000 103:02 1311                       /usr/lib/lib x.so (deleted)",
            "7ffd5a3e0000-7ffd5a401000 rw-p 00000000 00:00 0                          [stack]",
            "7f68043bb000-7f680447f000 rw-p 00000000 00:00 0 ",
            "7f2c4a1e0000-7f2c4a1e2000 r--p 00000000 fd:01 42 /tmp/new\\012line (deleted)",
            "08048000-08049000 R-XP 00000000 08:01 1 /x", "", "not a maps line",
        ]
        let lines = Gen.int(in: 0...(good.count - 1)).array(of: 1...8)
        // Where the reads end, as fractions of the text: anywhere, a line's middle included.
        let cuts = Gen.int(in: 0...1000).array(of: 0...6)
        await propertyCheck(count: 500, input: lines, cuts, Gen.bool) { picked, cuts, endsWithNewline in
            let text = picked.map { good[$0] }.joined(separator: "\n") + (endsWithNewline ? "\n" : "")
            let bytes = Array(text.utf8)
            bytes.withUnsafeBytes { raw in
                let whole = Result { () throws(VmIoError) in try MapsParser.parseMappings(raw) }
                var inPieces = MapsParser.LinesInProgress()
                var parsedBefore = 0
                for cut in cuts.map({ $0 * raw.count / 1000 }).sorted() {
                    inPieces.take(UnsafeRawBufferPointer(rebasing: raw[..<cut]))
                    // Only whole lines are taken, and never backwards.
                    #expect(inPieces.parsed >= parsedBefore && inPieces.parsed <= cut, "\(text)")
                    #expect(inPieces.parsed == 0 || raw[inPieces.parsed - 1] == UInt8(ascii: "\n"), "\(text)")
                    parsedBefore = inPieces.parsed
                }
                let pieced = Result { () throws(VmIoError) in try inPieces.finish(raw) }
                switch (whole, pieced) {
                case (.success(let a), .success(let b)): #expect(a == b, "\(text)")
                case (.failure(let a), .failure(let b)): #expect(a == b, "\(text)")
                default: Issue.record("whole \(whole), in pieces \(pieced): \(text)")
                }
            }
        }
    }
}
