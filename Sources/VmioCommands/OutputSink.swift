import SystemPackage
import VmIO
import VmioPtrace

/// Where a command's output goes: standard output, or a file, an ``OutputFile`` of the Linux
/// layer: a file is written under a temporary name in its directory (created without
/// following a symlink) and renamed into place by ``commit()``, so it is either complete or
/// absent; an existing file is replaced only when asked.
///
/// Text is gathered in a buffer of ``bufferSize`` bytes and written a buffer at a time, so a
/// dump of millions of lines costs a few thousand write(2) calls, and memory stays flat.
public final class OutputSink {
    public static let bufferSize = 256 << 10

    private let output: OutputFile
    /// The path asked for (nil for standard output).
    public let path: String?
    /// Whether ``commit()`` flushes the file to disk before its rename (``OutputFile/commit(durable:)``).
    private let durable: Bool
    /// The offset just past the last byte written (or buffered).
    private var position: UInt64 = 0
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: OutputSink.bufferSize, alignment: 16)
    private var buffered = 0

    /// Standard output.
    public init() {
        // Standard output is opened by nobody, so this cannot fail.
        output = try! OutputFile(path: nil)
        path = nil
        durable = false
    }

    /// The file at `path` (standard output for nil); an existing file is refused unless `replace`;
    /// `durable`: flushed to disk before it is renamed into place.
    public init(path: String?, replace: Bool = false, durable: Bool = true) throws(CommandError) {
        do { output = try OutputFile(path: path, replace: replace) } catch { throw CommandError(error) }
        output.startsWriteback = durable
        self.path = path
        self.durable = durable
    }

    /// Whether the output is a file (not standard output).
    public var isFile: Bool { output.isFile }

    deinit {
        try? flush()
        buffer.deallocate()
    }

    /// Puts a finished file in place (a symlink at its name is replaced, never followed).
    public func commit() throws {
        try flush()
        try output.commit(durable: durable)
    }

    /// Keeps an unfinished file as `FILE.partial` (`OutputFile.keepPartial(replace:)`): the name
    /// it was kept under, or why it could not be; nil when there is nothing to keep.
    public func keepPartial(replace: Bool) -> Result<String, Errno>? {
        try? flush()
        return output.keepPartial(replace: replace)
    }

    /// Writes `bytes` at `offset` from the start of the output: a file gets them in place
    /// (a skipped hole stays a hole of zeros); on standard output the gap since the last
    /// write is filled with zeros.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        if isFile {
            try flush()
            try output.write(bytes, at: offset)
            position = offset + UInt64(bytes.count)
        } else {
            if offset > position { try zeros(offset - position) }
            try append(bytes)
        }
    }

    /// Sets the output's final length (holes at the end read as zeros).
    public func finish(length: UInt64) throws {
        if isFile {
            try flush()
            try output.finish(length: length)
        } else if length > position {
            try zeros(length - position)
        }
    }

    /// Appends `text` and a newline.
    public func line(_ text: String) throws {
        try append(text)
        try append(byte: 0x0a)
    }

    /// Appends `text`.
    public func append(_ text: String) throws {
        var text = text
        try text.withUTF8 { (bytes) in try append(UnsafeRawBufferPointer(bytes)) }
    }

    public func append(byte: UInt8) throws {
        if buffered == buffer.count { try flush() }
        buffer[buffered] = byte
        buffered += 1
        position += 1
    }

    /// Appends `bytes`.
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        if buffered + bytes.count > buffer.count { try flush() }
        if bytes.count >= buffer.count {
            try output.write(bytes, at: position)  // nothing is buffered: position is the output's end
        } else {
            UnsafeMutableRawBufferPointer(rebasing: buffer[buffered..<(buffered + bytes.count)])
                .copyMemory(from: bytes)
            buffered += bytes.count
        }
        position += UInt64(bytes.count)
    }

    /// Appends what `body` writes into room for `count` bytes; `body` returns how many it wrote.
    /// The way the hex dumper and the value printers fill the buffer without a copy.
    public func append(upTo count: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Int) throws {
        precondition(count <= buffer.count, "append(upTo:) asks for more than the buffer holds")
        if buffered + count > buffer.count { try flush() }
        let start = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self) + buffered
        let written = body(start)
        buffered += written
        position += UInt64(written)
    }

    /// Writes out what is buffered.
    public func flush() throws {
        guard buffered > 0 else { return }
        let count = buffered
        buffered = 0
        try output.write(UnsafeRawBufferPointer(rebasing: buffer[0..<count]), at: position - UInt64(count))
    }

    private func zeros(_ count: UInt64) throws {
        var left = count
        while left > 0 {
            let n = Int(min(left, UInt64(buffer.count / 2)))
            try append(upTo: n) { start in
                start.initialize(repeating: 0, count: n)
                return n
            }
            left -= UInt64(n)
        }
    }
}
