import Glibc
import VmIO

/// Where a command's output goes: standard output, or a file. A file is written under a
/// temporary name in its directory (created without following a symlink) and renamed into
/// place by ``commit()``, so it is either complete or absent; an existing file is replaced
/// only when asked.
///
/// Text is gathered in a buffer of ``bufferSize`` bytes and written a buffer at a time, so a
/// dump of millions of lines costs a few thousand write(2) calls, and memory stays flat.
public final class OutputSink {
    public static let bufferSize = 256 << 10

    let fd: Int32
    public let isFile: Bool
    /// The path asked for (nil for standard output).
    public let path: String?
    private let temporary: String?
    private var committed = false
    /// The offset just past the last byte written (or buffered).
    private var position: UInt64 = 0
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: OutputSink.bufferSize, alignment: 16)
    private var buffered = 0

    /// Standard output.
    public init() {
        fd = 1
        isFile = false
        path = nil
        temporary = nil
    }

    /// The file at `path` (standard output for nil); an existing file is refused unless `replace`.
    public convenience init(path: String?, replace: Bool = false) throws(CommandError) {
        guard let path else {
            self.init()
            return
        }
        var st = stat()
        if lstat(path, &st) == 0 {
            if st.st_mode & S_IFMT == S_IFDIR { throw CommandError.badInput("\(path) is a directory") }
            guard replace else { throw CommandError.badInput("\(path) exists; pass --force to replace it") }
        }
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let temporary = "\(directory).\(name).\(getpid()).part"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CommandError.badInput("cannot create \(path): \(String(cString: strerror(errno)))") }
        self.init(fd: fd, path: path, temporary: temporary)
    }

    private init(fd: Int32, path: String, temporary: String) {
        self.fd = fd
        self.path = path
        self.temporary = temporary
        isFile = true
    }

    deinit {
        try? flush()
        buffer.deallocate()
        if isFile {
            close(fd)
            if !committed, let temporary { unlink(temporary) }
        }
    }

    /// Puts a finished file in place (a symlink at its name is replaced, never followed).
    public func commit() throws {
        try flush()
        guard isFile, !committed, let temporary, let path else { return }
        guard fsync(fd) == 0, rename(temporary, path) == 0 else {
            throw CommandError.badInput("cannot finish \(path): \(String(cString: strerror(errno)))")
        }
        committed = true
    }

    /// Keeps an unfinished file as `FILE.partial` (replacing one only when `replace`);
    /// returns its name, or nil when nothing was kept.
    public func keepPartial(replace: Bool) -> String? {
        try? flush()
        guard isFile, !committed, let temporary, let path else { return nil }
        let partial = path + ".partial"
        if replace { unlink(partial) }
        guard link(temporary, partial) == 0 else { return nil }
        return partial
    }

    /// Writes `bytes` at `offset` from the start of the output: a file gets them in place
    /// (a skipped hole stays a hole of zeros); on standard output the gap since the last
    /// write is filled with zeros.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        if isFile {
            try flush()
            var done = 0
            while done < bytes.count {
                let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw CommandError.badInput("write failed: \(String(cString: strerror(errno)))")
                }
                done += n
            }
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
            _ = ftruncate(fd, off_t(length))
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
            try writeAll(bytes)
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
        try writeAll(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw CommandError.badInput("write failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
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
