import ArgumentParser
import Glibc
import VmIO
import VmioPtrace
import VmioScript

struct Read: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read memory of a process.",
        discussion: """
            LEN is in bytes (decimal, 0x hex, or with a K/M/G suffix). A read that faults \
            prints what it read, then how many bytes moved and the first faulting address, \
            and exits 2. --json prints {pid, address, length, format, requested, moved, \
            complete, holes, stop, data | values | string | output}.
            """
    )

    @Argument(help: "The target's pid, or `self`.")
    var pid: PID

    @Argument(help: "Where to read: 0x…, decimal, [heap]+OFF, [stack], FILE+OFF, sym:NAME.")
    var address: AddressExpression

    @Argument(help: "How many bytes to read.")
    var length: Length

    @Option(help: "hex (a dump with addresses), raw (bytes), u8…u64, i8…i64, f32, f64, ptr, or str (up to a NUL).")
    var format: ValueFormat = .hex

    @Option(name: [.short, .customLong("output")], help: "Write the output to this file instead of standard output.")
    var output: String?

    @Flag(help: "Stop every thread for a consistent snapshot (resumed afterwards on every path).")
    var stop = false

    @Flag(help: "Step over pages that fault (each reported as a hole) instead of stopping at the first.")
    var skipFaults = false

    @Flag(
        help:
            "Read past holes, fill them with zeros, list them (and the mechanism that failed), and exit 0 unless the read stopped early."
    )
    var bestEffort = false

    @Flag(help: "Replace the -o file if it exists.")
    var force = false

    @Flag(help: "Group the hex dump by the target's words (its pointer width, in its byte order), like xxd -e.")
    var words = false

    @OptionGroup var attach: AttachOptions

    @OptionGroup var options: TargetOptions

    func run() throws {
        try runReporting(json: options.json) {
            let target = try Target(pid: pid.value)
            attach.apply(to: target)
            let start = try target.resolve(address)
            if stop { try stopForRead(target) }
            defer { target.resume() }
            // Typed values, strings and JSON are decoded in memory; raw bytes and hex dumps stream.
            let streams = format == .raw || (format == .hex && !options.json)
            guard streams else {
                var outcome = try Operations.read(
                    target, at: start, length: length.value, format: format,
                    skipFaults: skipFaults, bestEffort: bestEffort)
                if let output {
                    let sink = try OutputSink(path: output, replace: force)
                    for line in outcome.text { try sink.line(line) }
                    outcome.text = []
                    if outcome.status == .ok { try sink.commit() }
                }
                return emit(outcome, json: options.json)
            }
            let range = try AddressRange(start: start, count: length.value)
            guard target.view.translate(start) != nil else {
                throw BadInput("address \(start.hex) is in no mapping of pid \(pid)")
            }
            let sink = try OutputSink(path: output, replace: force)
            var bytes: [UInt8] = []
            let report: TransferReport
            if format == .raw {
                report = try target.stream(range, skipFaults: skipFaults, fillHoles: bestEffort) { at, chunk in
                    // With --json on standard output the bytes go into "data", not raw beside it.
                    if options.json && output == nil { bytes += chunk } else { try sink.write(chunk, at: at - start) }
                    return true
                }
                if !(options.json && output == nil) {
                    try sink.finish(length: report.moved + report.holes.reduce(0) { $0 + $1.length })
                }
            } else {
                var dump = HexDumper(sink: sink, words: words ? target.abi : nil)
                report = try target.stream(range, skipFaults: skipFaults, fillHoles: bestEffort) { at, chunk in
                    try dump.add(at, chunk)
                    return true
                }
                if skipFaults && report.stop == nil {
                    try dump.finish(start: start, end: range.end)
                } else {
                    try dump.flush()
                }
            }
            if options.json {
                var fields: [(String, JSONValue)] =
                    [
                        ("pid", .int(Int64(pid.value))), ("address", .string(start.hex)),
                        ("length", .uint(length.value)), ("format", .string(format.rawValue)),
                    ] + report.jsonFields
                fields.append(output.map { ("output", .string($0)) } ?? ("data", .string(hexString(bytes))))
                print(JSONValue.object(fields).rendered)
            }
            let result = status(of: report, bestEffort: bestEffort)
            // The file appears only when the read ran to its end (holes skipped on request
            // count as run); a read cut short leaves nothing behind.
            // Nothing is lost either: what did move is kept beside it, as FILE.partial.
            var kept = ""
            if report.stop == nil {
                try sink.commit()
            } else if let partial = sink.keepPartial(replace: force) {
                kept = "; the bytes that moved are in \(partial)"
            }
            if result != .ok {
                printError("vmio-ptrace: " + describe(report, verb: "partial read") + kept)
            } else if !report.holes.isEmpty {
                printError("vmio-ptrace: " + describe(report, verb: "best effort"))
            }
            return result
        }
    }
}

extension ValueFormat: ExpressibleByArgument {}

/// Where a command's output goes: standard output, or a file. A file is written under a
/// temporary name in its directory (created without following a symlink) and renamed into
/// place by ``commit()``, so it is either complete or absent; an existing file is replaced
/// only when asked.
final class OutputSink {
    let fd: Int32
    let isFile: Bool
    private var position: UInt64 = 0
    private let path: String?
    private let temporary: String?
    private var committed = false

    init(path: String?, replace: Bool = false) throws {
        self.path = path
        guard let path else {
            fd = 1
            isFile = false
            temporary = nil
            return
        }
        var st = stat()
        if lstat(path, &st) == 0 {
            if st.st_mode & S_IFMT == S_IFDIR { throw BadInput("\(path) is a directory") }
            guard replace else { throw BadInput("\(path) exists; pass --force to replace it") }
        }
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let temporary = "\(directory).\(name).\(getpid()).part"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BadInput("cannot create \(path): \(String(cString: strerror(errno)))") }
        self.fd = fd
        self.temporary = temporary
        isFile = true
    }

    /// Puts a finished file in place (a symlink at its name is replaced, never followed).
    func commit() throws {
        guard isFile, !committed, let temporary, let path else { return }
        guard fsync(fd) == 0, rename(temporary, path) == 0 else {
            throw BadInput("cannot finish \(path): \(String(cString: strerror(errno)))")
        }
        committed = true
    }

    /// Keeps an unfinished file as `FILE.partial` (replacing one only when `replace`);
    /// returns its name, or nil when nothing was kept.
    func keepPartial(replace: Bool) -> String? {
        guard isFile, !committed, let temporary, let path else { return nil }
        let partial = path + ".partial"
        if replace { unlink(partial) }
        guard link(temporary, partial) == 0 else { return nil }
        return partial
    }

    deinit {
        if isFile {
            close(fd)
            if !committed, let temporary { unlink(temporary) }
        }
    }

    /// Writes `bytes` at `offset` from the start of the output; on standard output the gap
    /// since the last write (a skipped hole) is filled with zeros.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        if isFile {
            var done = 0
            while done < bytes.count {
                let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
                if n < 0 { throw BadInput("write failed: \(String(cString: strerror(errno)))") }
                done += n
            }
        } else {
            if offset > position { try zeros(offset - position) }
            try append(bytes)
        }
        position = offset + UInt64(bytes.count)
    }

    /// Sets a file's final length (holes at the end read as zeros).
    func finish(length: UInt64) throws {
        if isFile { _ = ftruncate(fd, off_t(length)) } else if length > position { try zeros(length - position) }
    }

    func line(_ text: String) throws {
        var text = text + "\n"
        try text.withUTF8 { try append(UnsafeRawBufferPointer($0)) }
    }

    private func zeros(_ count: UInt64) throws {
        let block = [UInt8](repeating: 0, count: 64 << 10)
        var left = count
        while left > 0 {
            let n = Int(min(left, UInt64(block.count)))
            try block.withUnsafeBytes { try append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            left -= UInt64(n)
        }
    }

    private func append(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw BadInput("write failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }
}

/// Turns streamed chunks into xxd-style lines, marking holes.
struct HexDumper {
    let sink: OutputSink
    /// Group by the words of this ABI instead of by byte pairs.
    let words: TargetABI?
    private var lineStart: Address = 0
    private var pending: [UInt8] = []
    /// The address just past the last byte seen (nil before the first chunk).
    private var next: Address?

    init(sink: OutputSink, words: TargetABI? = nil) {
        self.sink = sink
        self.words = words
    }

    private func line(_ address: Address, _ bytes: ArraySlice<UInt8>) -> String {
        words.map { wordDumpLine(address: address, bytes, abi: $0) } ?? hexDumpLine(address: address, bytes)
    }

    mutating func add(_ at: Address, _ chunk: UnsafeRawBufferPointer) throws {
        // Any chunk that does not continue the last byte seen follows a hole.
        if let expected = next, at != expected {
            try flush()
            try sink.line("*** \(at - expected) bytes at \(expected.hex) could not be read")
        }
        if pending.isEmpty { lineStart = at }
        for byte in chunk {
            pending.append(byte)
            if pending.count == 16 {
                try sink.line(line(lineStart, pending[...]))
                lineStart += 16
                pending.removeAll(keepingCapacity: true)
            }
        }
        next = at + UInt64(chunk.count)
    }

    /// Writes the last partial line.
    mutating func flush() throws {
        if !pending.isEmpty { try sink.line(line(lineStart, pending[...])) }
        pending.removeAll(keepingCapacity: true)
    }

    /// Writes the last partial line and marks a hole running to `end` of a range that
    /// started at `start` (skipped faults at the end, or a range with no readable byte).
    mutating func finish(start: Address, end: Address) throws {
        try flush()
        let expected = next ?? start
        if end > expected { try sink.line("*** \(end - expected) bytes at \(expected.hex) could not be read") }
    }
}
