import VmIO
import VmioPtrace

/// One streamed read: the bytes go through one buffer into the output as they come, in the
/// format asked for, so memory stays flat for any length. The text goes to `-o FILE` or
/// standard output; with `--json` and no file, standard output gets one JSON object whose
/// data (`data`, `values` or `string`) is written as it comes, before the report fields,
/// which are known only at the end.
struct ReadStream {
    let command: ReadCommand
    let target: Target
    let range: AddressRange
    let json: Bool

    func run() throws -> Outcome {
        let file = try command.output.map { (path) in
            try OutputSink(path: path, replace: command.force, durable: !command.noSync)
        }
        let stdout = OutputSink()
        var outcome = Outcome()
        if json && file == nil {
            var object = JSONObjectWriter(stdout)
            try object.fields(command.jsonHead(target, range))
            let report = try streamData(into: &object)
            try object.fields(report.jsonFields)
            try object.end()
            // Flushed here, not left to the sink's end, which cannot report a failed write.
            try stdout.flush()
            command.conclude(report, into: &outcome)
            outcome.printed = true
            return outcome
        }
        let sink = file ?? stdout
        let report = try streamText(into: sink)
        // The file appears only when the read ran to its end (holes skipped on request
        // count as run); a read cut short leaves nothing behind. Nothing is lost either:
        // what did move is kept beside it, as FILE.partial.
        var kept = ""
        if report.stop == nil {
            try sink.commit()
        } else {
            switch sink.keepPartial(replace: command.force) {
            case .success(let partial): kept = "; the bytes that moved are in \(partial)"
            case .failure(let error): kept = "; the bytes that moved could not be kept (\(error))"
            case nil: break
            }
        }
        try sink.flush()
        command.conclude(report, into: &outcome, kept: kept)
        if let path = file?.path {
            outcome.json = command.jsonHead(target, range) + report.jsonFields + [("output", .string(path))]
        } else {
            outcome.printed = true
        }
        return outcome
    }

    /// The text of the format: a hex dump, raw bytes, one value a line, or the string.
    private func streamText(into sink: OutputSink) throws -> TransferReport {
        let start = range.start
        switch command.format {
        case .raw:
            let report = try command.stream(target, range, fillsHoles: false) { at, chunk in
                try sink.write(chunk, at: at - start)
                return true
            }
            try sink.finish(length: report.moved + report.holes.reduce(0) { $0 + $1.length })
            return report
        case .hex:
            var dump = HexDumper(sink: sink, words: command.words ? target.abi : nil)
            let report = try command.stream(target, range, fillsHoles: false) { at, chunk in
                try dump.add(at, chunk)
                return true
            }
            if command.skipFaults && report.stop == nil {
                try dump.finish(start: start, end: range.end)
            } else {
                try dump.flush()
            }
            return report
        case .str:
            var text = StringStream()
            let report = try streamString(&text) { try sink.append($0) }
            try sink.line(text.finish())
            return report
        default:
            // One value prints bare; more print one `ADDR: VALUE` a line. The first waits for a second.
            var values = ValueStream(format: command.format, abi: target.abi, start: start)
            var first: JSONValue?
            let report = try command.stream(target, range, fillsHoles: true) { _, chunk in
                try values.add(chunk) { address, value, index in
                    if index == 0 {
                        first = value
                        return
                    }
                    if index == 1, let first { try sink.appendValueLine(start, first) }
                    try sink.appendValueLine(address, value)
                }
                return true
            }
            if values.count == 1, let first {
                try sink.appendValue(first)
                try sink.append(byte: 0x0a)
            }
            return report
        }
    }

    /// The data field of the JSON object: `data` (hex), `values` or `string`.
    private func streamData(into object: inout JSONObjectWriter) throws -> TransferReport {
        let sink = object.sink
        switch command.format {
        case .raw, .hex:
            try object.key("data")
            try sink.append(byte: 0x22)
            let report = try command.stream(target, range, fillsHoles: true) { _, chunk in
                try sink.appendHex(chunk)
                return true
            }
            try sink.append(byte: 0x22)
            return report
        case .str:
            try object.key("string")
            try sink.append(byte: 0x22)
            var text = StringStream()
            let report = try streamString(&text) { try sink.appendJSONEscaped($0) }
            try sink.appendJSONEscaped(text.finish())
            try sink.append(byte: 0x22)
            return report
        default:
            try object.key("values")
            try sink.append(byte: 0x5b)
            var values = ValueStream(format: command.format, abi: target.abi, start: range.start)
            let report = try command.stream(target, range, fillsHoles: true) { _, chunk in
                try values.add(chunk) { _, value, index in
                    if index > 0 { try sink.append(byte: 0x2c) }
                    try sink.appendValue(value, json: true)
                }
                return true
            }
            try sink.append(byte: 0x5d)
            return report
        }
    }

    /// Streams the string up to its NUL, handing on each piece of decoded text.
    private func streamString(
        _ text: inout StringStream, _ write: (String) throws -> Void
    ) throws -> TransferReport {
        try command.stream(target, range, fillsHoles: false) { _, chunk in
            let nul = chunk.firstIndex(of: 0)
            try write(text.add(UnsafeRawBufferPointer(rebasing: chunk[..<(nul ?? chunk.endIndex)])))
            return nul == nil
        }
    }
}

/// Typed values from streamed chunks, in the target's byte order: a value split between two
/// chunks is joined.
struct ValueStream {
    let format: ValueFormat
    let abi: TargetABI
    let width: Int
    let start: Address
    private var carry: [UInt8] = []
    /// How many values were handed on.
    private(set) var count = 0

    init(format: ValueFormat, abi: TargetABI, start: Address) {
        self.format = format
        self.abi = abi
        self.width = format.width(for: abi) ?? 1
        self.start = start
    }

    /// Hands each whole value of `chunk` to `emit` with its address and index.
    mutating func add(
        _ chunk: UnsafeRawBufferPointer, _ emit: (Address, JSONValue, Int) throws -> Void
    ) throws {
        var offset = 0
        if !carry.isEmpty {
            let take = min(width - carry.count, chunk.count)
            carry += chunk[0..<take]
            offset = take
            guard carry.count == width else { return }
            try carry.withUnsafeBytes { try next(load($0, at: 0), emit) }
            carry.removeAll(keepingCapacity: true)
        }
        while chunk.count - offset >= width {
            try next(load(chunk, at: offset), emit)
            offset += width
        }
        carry += chunk[offset...]
    }

    /// The value of `width` bytes at `offset`, in the target's byte order.
    private func load(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt64 {
        let little: UInt64 =
            switch width {
            case 1: UInt64(bytes[offset])
            case 2: UInt64(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
            case 4: UInt64(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            default: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            }
        guard abi.byteOrder == .big else { return little }
        return little.byteSwapped >> UInt64(64 - 8 * width)
    }

    private mutating func next(_ raw: UInt64, _ emit: (Address, JSONValue, Int) throws -> Void) throws {
        let value = format.value(raw, abi: abi)
        try emit(start + UInt64(count * width), value, count)
        count += 1
    }
}

/// UTF-8 text from streamed chunks, decoded as the whole would be: a sequence split between
/// two chunks is joined before it is decoded (invalid bytes become U+FFFD either way).
struct StringStream {
    private var carry: [UInt8] = []

    /// The text of `chunk` that is complete, keeping an unfinished sequence at its end.
    mutating func add(_ chunk: UnsafeRawBufferPointer) -> String {
        let bytes = carry + chunk
        let whole = bytes.count - Self.unfinishedTail(bytes)
        carry = Array(bytes[whole...])
        return String(decoding: bytes[..<whole], as: UTF8.self)
    }

    /// The text of what is left.
    mutating func finish() -> String {
        defer { carry = [] }
        return String(decoding: carry, as: UTF8.self)
    }

    /// How many bytes at the end of `bytes` begin a sequence that needs more bytes.
    static func unfinishedTail(_ bytes: [UInt8]) -> Int {
        guard !bytes.isEmpty else { return 0 }
        for back in 1...min(3, bytes.count) {
            let byte = bytes[bytes.count - back]
            guard byte & 0xc0 == 0x80 else {
                let needs = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1
                return needs > back ? back : 0
            }
        }
        return 0
    }
}

extension OutputSink {
    /// Appends a decoded value as text (or, with `json`, as JSON: a quoted string):
    /// digits written in place for integers, the rendered text for the rest.
    func appendValue(_ value: JSONValue, json: Bool = false) throws {
        switch value {
        case .uint(let u): try appendDecimal(u, negative: false)
        case .int(let i): try appendDecimal(i.magnitude, negative: i < 0)
        default: try append(json ? value.rendered : ValueFormat.text(value))
        }
    }

    /// Appends `ADDR: VALUE` and a newline.
    func appendValueLine(_ address: Address, _ value: JSONValue) throws {
        try append(upTo: 20) { out in
            out[0] = 0x30  // "0x"
            out[1] = 0x78
            let digits = max(1, (67 - address.leadingZeroBitCount) / 4)
            for i in 0..<digits {
                out[2 + i] = hexDigits[Int(truncatingIfNeeded: address >> UInt64((digits - 1 - i) * 4)) & 15]
            }
            out[2 + digits] = 0x3a  // ": "
            out[3 + digits] = 0x20
            return 4 + digits
        }
        try appendValue(value)
        try append(byte: 0x0a)
    }

    private func appendDecimal(_ magnitude: UInt64, negative: Bool) throws {
        try append(upTo: 21) { out in
            var n = 0
            if negative {
                out[0] = 0x2d
                n = 1
            }
            var digits = 1
            var rest = magnitude / 10
            while rest > 0 {
                digits += 1
                rest /= 10
            }
            var value = magnitude
            for i in stride(from: n + digits - 1, through: n, by: -1) {
                out[i] = 0x30 + UInt8(value % 10)
                value /= 10
            }
            return n + digits
        }
    }
}
