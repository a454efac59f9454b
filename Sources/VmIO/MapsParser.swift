/// Parses the text of `/proc/PID/maps` into a ``MemView``.
///
/// Handles every form the kernel prints: 32- and 64-bit address widths, device
/// majors of any width (`fd:01`, `103:02`), empty paths, paths with spaces,
/// ` (deleted)`, `[anon:NAME]`, `[vsyscall]` above the 47-bit line, and newlines
/// in paths escaped as `\012`. Bad text is a ``VmIoError/mapsSyntax(line:column:reason:)``
/// that names the line and column, never a crash.
public enum MapsParser {
    /// Parses a whole maps text; the result is checked sorted and disjoint.
    ///
    /// Throws ``VmIoError/mapsSyntax(line:column:reason:)`` for a line that does not parse, and
    /// ``VmIoError/mappingsUnsorted(index:)`` or ``VmIoError/mappingsOverlap(index:)`` when the lines
    /// are out of order or overlap.
    public static func parse(_ text: String, generation: UInt64 = 0) throws(VmIoError) -> MemView {
        var text = text
        let result: Result<[Mapping], VmIoError> = text.withUTF8 { utf8 in
            do throws(VmIoError) {
                return .success(try parseMappings(UnsafeRawBufferPointer(utf8)))
            } catch {
                return .failure(error)
            }
        }
        return try MemView(mappings: result.get(), generation: generation)
    }

    /// Parses maps text given as raw bytes (as read from the file).
    ///
    /// Throws as ``parse(_:generation:)`` does.
    public static func parse(bytes: UnsafeRawBufferPointer, generation: UInt64 = 0) throws(VmIoError) -> MemView {
        try MemView(mappings: parseMappings(bytes), generation: generation)
    }

    /// Parses the lines without building a view (no sortedness check).
    ///
    /// Throws ``VmIoError/mapsSyntax(line:column:reason:)`` for a line that does not parse.
    public static func parseMappings(_ bytes: UnsafeRawBufferPointer) throws(VmIoError) -> [Mapping] {
        // Text as the kernel prints it takes one pass; anything else (bad text, or a form
        // the fast pass leaves to the careful one) is parsed again line by line, whose
        // errors name the line and column.
        if let mappings = parseWellFormed(bytes) { return mappings }
        return try parseLineByLine(bytes)
    }

    /// The lines in one pass over the bytes, as the kernel prints them; nil at the first byte
    /// it does not expect there (an error, a path with `\012`, a field of more digits than the
    /// kernel prints), which ``parseLineByLine(_:)`` then reads. What it returns is what
    /// ``parseLineByLine(_:)`` returns for the same bytes (MapsParserTests checks both ways).
    static func parseWellFormed(_ bytes: UnsafeRawBufferPointer) -> [Mapping]? {
        var lines = LinesInProgress(expectedBytes: bytes.count)
        lines.parseWellFormed(bytes, upTo: bytes.count)
        return lines.wellFormed ? lines.mappings : nil
    }

    /// Parses maps text while it is still being read: ``take(_:)`` parses the whole lines
    /// that came in since its last call, ``finish(_:)`` the rest. The mappings are what
    /// ``parseMappings(_:)`` gives for the whole text, and so are the errors: a step that
    /// meets text the fast pass leaves to the careful one (or an error) stops the steps, and
    /// ``finish(_:)`` parses the whole text line by line.
    ///
    /// Each call gets all the text so far, from its first byte: the text may have moved
    /// between calls (a buffer that grew), but the bytes already given do not change.
    public struct LinesInProgress {
        fileprivate var mappings: [Mapping] = []
        /// Where the text not parsed yet begins: the start of a line.
        public private(set) var parsed = 0
        /// False once a step met text the fast pass does not take.
        fileprivate var wellFormed = true
        // Consecutive mappings of one file share one String (a library has four or five
        // lines); `lastPathBytes` is where the last path is in the text.
        private var lastPath = ""
        private var lastPathBytes = 0..<0

        /// Room for the mappings of about `expectedBytes` of text.
        public init(expectedBytes: Int = 0) {
            mappings.reserveCapacity(expectedBytes / 64 + 1)  // anonymous lines are about 74 bytes
        }

        /// Parses the whole lines of `text` not parsed yet (up to its last newline).
        public mutating func take(_ text: UnsafeRawBufferPointer) {
            guard wellFormed, var end = text.indices.last, end >= parsed else { return }
            while end >= parsed && text[end] != UInt8(ascii: "\n") { end -= 1 }
            guard end >= parsed else { return }  // no whole line yet
            parseWellFormed(text, upTo: end + 1)
        }

        /// Parses the rest of `text` (the last line may lack its newline) and returns every
        /// mapping of the text.
        ///
        /// Throws ``VmIoError/mapsSyntax(line:column:reason:)`` for a line that does not parse.
        public mutating func finish(_ text: UnsafeRawBufferPointer) throws(VmIoError) -> [Mapping] {
            if wellFormed { parseWellFormed(text, upTo: text.count) }
            return wellFormed ? mappings : try parseLineByLine(text)
        }

        /// The fast pass over `text[parsed..<limit]`, which holds whole lines (or the text's end).
        fileprivate mutating func parseWellFormed(_ text: UnsafeRawBufferPointer, upTo limit: Int) {
            // The scanner sees the text up to `limit`, so its positions are the text's.
            let bytes = UnsafeRawBufferPointer(rebasing: text[..<limit])
            var scan = WellFormedScanner(bytes: bytes, position: parsed)
            // `parsed` moves a whole line at a time; a line the fast pass leaves stops it there.
            while let first = scan.peek() {
                defer { if wellFormed { parsed = scan.position } }
                if first == UInt8(ascii: "\n") {
                    scan.position += 1
                    continue
                }
                guard let start = scan.hex(then: UInt8(ascii: "-")), let end = scan.hex(then: UInt8(ascii: " ")),
                    start <= end, let permissions = scan.permissions(), let offset = scan.hex(then: UInt8(ascii: " ")),
                    let major = scan.hex(then: UInt8(ascii: ":"), maxDigits: 8),
                    let minor = scan.hex(then: UInt8(ascii: " "), maxDigits: 8), let inode = scan.decimal()
                else {
                    wellFormed = false
                    return
                }
                var path = ""
                var deleted = false
                if scan.peek() == UInt8(ascii: " ") {
                    scan.skipSpaces()
                    // A `\` escape: the careful parse.
                    guard let named = scan.restOfLine() else {
                        wellFormed = false
                        return
                    }
                    if !named.isEmpty {
                        let deletedSuffix = scan.endsWithDeleted(named)
                        let pathBytes = deletedSuffix ? named.lowerBound..<(named.upperBound - 10) : named
                        deleted = deletedSuffix
                        if scan.sameBytes(pathBytes, lastPathBytes) {
                            path = lastPath
                        } else {
                            path = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[pathBytes]), as: UTF8.self)
                            (lastPath, lastPathBytes) = (path, pathBytes)
                        }
                    }
                }
                switch scan.peek() {
                case nil: break
                case UInt8(ascii: "\n"): scan.position += 1
                default:
                    wellFormed = false
                    return
                }
                mappings.append(
                    Mapping(
                        range: AddressRange(uncheckedStart: start, end: end), permissions: permissions, offset: offset,
                        device: DeviceNumber(major: UInt32(major), minor: UInt32(minor)), inode: inode, path: path,
                        isDeleted: deleted))
            }
        }
    }

    /// Parses line by line, each checked field by field: the errors name the line and column.
    static func parseLineByLine(_ bytes: UnsafeRawBufferPointer) throws(VmIoError) -> [Mapping] {
        var mappings: [Mapping] = []
        mappings.reserveCapacity(bytes.count / 64 + 1)  // anonymous lines are about 74 bytes
        var lineStart = 0
        var lineNumber = 1
        let n = bytes.count
        while lineStart < n {
            let lineEnd = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? n
            if lineEnd > lineStart {
                var cursor = LineCursor(
                    bytes: bytes, position: lineStart, end: lineEnd, lineStart: lineStart, line: lineNumber)
                mappings.append(try cursor.mapping())
            }
            lineStart = lineEnd + 1
            lineNumber += 1
        }
        return mappings
    }

    /// Parses one line (without its newline); `lineNumber` is used in errors.
    public static func parseLine(_ line: String, lineNumber: Int = 1) throws(VmIoError) -> Mapping {
        var line = line
        let result: Result<Mapping, VmIoError> = line.withUTF8 { utf8 in
            let raw = UnsafeRawBufferPointer(utf8)
            if let nl = raw.firstIndex(of: UInt8(ascii: "\n")) {
                return .failure(.mapsSyntax(line: lineNumber, column: nl + 1, reason: .newlineInsideLine))
            }
            var cursor = LineCursor(bytes: raw, position: 0, end: raw.count, lineStart: 0, line: lineNumber)
            do throws(VmIoError) { return .success(try cursor.mapping()) } catch { return .failure(error) }
        }
        return try result.get()
    }
}

/// The fast pass of ``MapsParser/parseWellFormed(_:)``: each step takes a field and its
/// separator, or answers nil and leaves the text to the careful parse.
private struct WellFormedScanner {
    let bytes: UnsafeRawBufferPointer
    var position: Int

    @inline(__always)
    func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

    /// 1 to `maxDigits` hex digits, then `separator` (taken too).
    @inline(__always)
    mutating func hex(then separator: UInt8, maxDigits: Int = 16) -> UInt64? {
        var value: UInt64 = 0
        let first = position
        let n = bytes.count
        while position < n {
            let c = bytes[position]
            var digit = c &- UInt8(ascii: "0")
            if digit > 9 {
                let letter = (c | 0x20) &- UInt8(ascii: "a")  // A-F as a-f
                guard letter < 6 else { break }
                digit = letter &+ 10
            }
            value = value << 4 | UInt64(digit)
            position += 1
        }
        let digits = position - first
        guard digits > 0, digits <= maxDigits, position < n, bytes[position] == separator else { return nil }
        position += 1
        return value
    }

    /// 1 to 19 decimal digits (19 cannot overflow a UInt64; the careful parse takes more).
    @inline(__always)
    mutating func decimal() -> UInt64? {
        var value: UInt64 = 0
        let first = position
        while position < bytes.count {
            let digit = bytes[position] &- UInt8(ascii: "0")
            guard digit <= 9 else { break }
            value = value &* 10 &+ UInt64(digit)
            position += 1
        }
        let digits = position - first
        return digits > 0 && digits <= 19 ? value : nil
    }

    /// `rwxp` / `rwxs` with `-` for a missing right, then a space.
    @inline(__always)
    mutating func permissions() -> Permissions? {
        guard bytes.count - position >= 5 else { return nil }
        let (r, w, x, share) = (bytes[position], bytes[position + 1], bytes[position + 2], bytes[position + 3])
        guard r == UInt8(ascii: "r") || r == UInt8(ascii: "-"), w == UInt8(ascii: "w") || w == UInt8(ascii: "-"),
            x == UInt8(ascii: "x") || x == UInt8(ascii: "-"), share == UInt8(ascii: "p") || share == UInt8(ascii: "s"),
            bytes[position + 4] == UInt8(ascii: " ")
        else { return nil }
        position += 5
        return Permissions(
            read: r == UInt8(ascii: "r"), write: w == UInt8(ascii: "w"), execute: x == UInt8(ascii: "x"),
            shared: share == UInt8(ascii: "s"))
    }

    @inline(__always)
    mutating func skipSpaces() {
        while position < bytes.count && bytes[position] == UInt8(ascii: " ") { position += 1 }
    }

    /// The bytes up to the newline (or the end), which stays; nil when they hold a `\`.
    @inline(__always)
    mutating func restOfLine() -> Range<Int>? {
        let first = position
        while position < bytes.count {
            let c = bytes[position]
            if c == UInt8(ascii: "\n") { break }
            if c == UInt8(ascii: "\\") { return nil }
            position += 1
        }
        return first..<position
    }

    /// Whether `range` ends with ` (deleted)`.
    func endsWithDeleted(_ range: Range<Int>) -> Bool {
        let suffix: StaticString = " (deleted)"
        guard range.count >= suffix.utf8CodeUnitCount else { return false }
        let from = range.upperBound - suffix.utf8CodeUnitCount
        return suffix.withUTF8Buffer { s in
            var i = 0
            while i < s.count {
                if bytes[from + i] != s[i] { return false }
                i += 1
            }
            return true
        }
    }

    /// Whether two ranges of the text hold the same bytes.
    func sameBytes(_ a: Range<Int>, _ b: Range<Int>) -> Bool {
        guard a.count == b.count else { return false }
        var (i, j) = (a.lowerBound, b.lowerBound)
        while i < a.upperBound {
            if bytes[i] != bytes[j] { return false }
            i += 1
            j += 1
        }
        return true
    }
}

/// A cursor over the bytes of one maps line.
private struct LineCursor {
    let bytes: UnsafeRawBufferPointer
    var position: Int
    let end: Int
    let lineStart: Int
    let line: Int

    func fail(_ reason: MapsProblem) -> VmIoError {
        .mapsSyntax(line: line, column: position - lineStart + 1, reason: reason)
    }

    mutating func mapping() throws(VmIoError) -> Mapping {
        let start = try hex(field: .startAddress, maxDigits: 16)
        try expect(UInt8(ascii: "-"), .dash)
        let endAddress = try hex(field: .endAddress, maxDigits: 16)
        guard start <= endAddress else { throw fail(.startAboveEnd) }
        try expect(UInt8(ascii: " "), .afterAddresses)
        let permissions = try perms()
        try expect(UInt8(ascii: " "), .afterPermissions)
        let offset = try hex(field: .offset, maxDigits: 16)
        try expect(UInt8(ascii: " "), .afterOffset)
        let major = try hex(field: .deviceMajor, maxDigits: 8)
        try expect(UInt8(ascii: ":"), .deviceColon)
        let minor = try hex(field: .deviceMinor, maxDigits: 8)
        try expect(UInt8(ascii: " "), .afterDevice)
        let inode = try decimal(field: .inode)
        var path = ""
        var deleted = false
        if position < end {
            try expect(UInt8(ascii: " "), .beforePath)
            while position < end && bytes[position] == UInt8(ascii: " ") { position += 1 }
            if position < end { (path, deleted) = decodePath(position..<end) }
            position = end
        }
        return Mapping(
            range: AddressRange(uncheckedStart: start, end: endAddress), permissions: permissions,
            offset: offset, device: DeviceNumber(major: UInt32(major), minor: UInt32(minor)),
            inode: inode, path: path, isDeleted: deleted)
    }

    @inline(__always)
    mutating func expect(_ byte: UInt8, _ what: MapsSeparator) throws(VmIoError) {
        guard position < end else { throw fail(.endsBefore(what)) }
        guard bytes[position] == byte else { throw fail(.expected(what)) }
        position += 1
    }

    // Enum names, not Strings: a String argument cost a retain and release on every call.
    @inline(__always)
    mutating func hex(field: MapsField, maxDigits: Int) throws(VmIoError) -> UInt64 {
        var value: UInt64 = 0
        let first = position
        while position < end {
            let c = bytes[position]
            let digit: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c &- UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c &- UInt8(ascii: "a") &+ 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c &- UInt8(ascii: "A") &+ 10
            default:
                guard position > first else { throw fail(.expectedHex(field)) }
                return value
            }
            guard position - first < maxDigits else { throw fail(.tooManyDigits(field, max: maxDigits)) }
            value = value << 4 | UInt64(digit)
            position += 1
        }
        guard position > first else { throw fail(.endsBeforeField(field)) }
        return value
    }

    @inline(__always)
    mutating func decimal(field: MapsField) throws(VmIoError) -> UInt64 {
        var value: UInt64 = 0
        let first = position
        while position < end, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(bytes[position] - UInt8(ascii: "0")))
            guard !o1 && !o2 else { throw fail(.tooLarge(field)) }
            value = s
            position += 1
        }
        guard position > first else { throw fail(.expectedDecimal(field)) }
        return value
    }

    mutating func perms() throws(VmIoError) -> Permissions {
        guard end - position >= 4 else { throw fail(.permissions) }
        // Bytes, not Characters: this runs three times a line (it was a third of the parse).
        func flag(_ i: Int, _ yes: UInt8) -> Bool? {
            let c = bytes[position + i]
            if c == UInt8(ascii: "-") { return false }
            return c == yes ? true : nil
        }
        guard let r = flag(0, UInt8(ascii: "r")), let w = flag(1, UInt8(ascii: "w")), let x = flag(2, UInt8(ascii: "x"))
        else {
            throw fail(.permissions)
        }
        let share = bytes[position + 3]
        guard share == UInt8(ascii: "p") || share == UInt8(ascii: "s") else {
            position += 3
            throw fail(.sharing)
        }
        position += 4
        return Permissions(read: r, write: w, execute: x, shared: share == UInt8(ascii: "s"))
    }

    /// Decodes `\012` (the kernel's escape for a newline in a path) and a trailing ` (deleted)`.
    func decodePath(_ r: Range<Int>) -> (String, Bool) {
        let suffix = Array(" (deleted)".utf8)
        var upper = r.upperBound
        var deleted = false
        if r.count >= suffix.count
            && zip(bytes[(upper - suffix.count)..<upper], suffix).allSatisfy({ $0 == $1 })
        {
            deleted = true
            upper -= suffix.count
        }
        var out: [UInt8] = []
        out.reserveCapacity(upper - r.lowerBound)
        var i = r.lowerBound
        while i < upper {
            if bytes[i] == UInt8(ascii: "\\"), i + 3 < upper,
                bytes[i + 1] == UInt8(ascii: "0"), bytes[i + 2] == UInt8(ascii: "1"), bytes[i + 3] == UInt8(ascii: "2")
            {
                out.append(UInt8(ascii: "\n"))
                i += 4
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return (String(decoding: out, as: UTF8.self), deleted)
    }
}
