import Glibc
import SystemPackage
import VmIO

/// Where a command's output goes: standard output, or a file. A file is written under a
/// temporary name in its directory (created without following a symlink) and renamed into
/// place by `commit()`, so it is either complete or absent; an existing file is replaced
/// only when asked. Errors are ``TargetError/file(path:_:)`` (bad input).
public final class OutputFile {
    /// The descriptor written: 1 for standard output.
    public let fd: Int32
    /// Whether the output is a file (not standard output).
    public let isFile: Bool
    private var position: UInt64 = 0
    private let path: String?
    private let temporary: String?
    /// The directory the file goes into, with its trailing slash ("" for the working directory).
    private let directory: String
    private var committed = false
    /// Where the signal handlers find the temporary file to remove it (``Sys/armOutputCleanup(_:)``).
    private var cleanupSlot: Int32?
    /// Whether write-back of a file starts every 8 MiB as it is written (for a file that
    /// will be committed durably: the disk works meanwhile, and the closing `fsync` finds
    /// little left to wait for).
    public var startsWriteback = false
    private var writeback = Writeback()

    /// Standard output when `path` is nil, else a new file at `path` (an existing one only
    /// when `replace`; never a directory).
    ///
    /// Throws ``TargetError/file(path:_:)``: ``FileProblem/isDirectory`` for a directory,
    /// ``FileProblem/exists`` for an existing file without `replace`, ``FileProblem/cannotCreate(_:)``
    /// when the temporary file cannot be created (`open(2)` with `O_CREAT | O_EXCL`).
    public init(path: String?, replace: Bool = false) throws(TargetError) {
        self.path = path
        guard let path else {
            fd = 1
            isFile = false
            temporary = nil
            directory = ""
            return
        }
        if let existing = Files.kind(path) {
            if existing.type == S_IFDIR { throw .file(path: path, .isDirectory) }
            guard replace else { throw .file(path: path, .exists) }
        }
        let slash = path.lastIndex(of: "/")
        directory = slash.map { String(path[...$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        // A writer killed by SIGKILL left its temporary file behind; none that a live writer holds.
        Files.removeLeftovers(of: name, in: directory, suffixes: ["part"]) { try? Sys.unlink($0) }
        let temporary = "\(directory).\(name).\(Sys.processID).part"
        do { fd = try Self.createHeld(temporary) } catch { throw .file(path: path, .cannotCreate(error)) }
        self.temporary = temporary
        isFile = true
        // A fatal signal (Ctrl-C) while it is written removes it, as it does a dump's files.
        Tracer.installSignalHandlersOnce()
        cleanupSlot = Sys.armOutputCleanup(temporary)
    }

    /// Creates the temporary file `path` (`O_EXCL`) and holds it as a live writer's
    /// (``Files/holdAsWriter(_:)``). Another writer's cleanup of leftovers may take it between
    /// the create and the lock: then it is made again (three tries).
    private static func createHeld(_ path: String) throws(Errno) -> Int32 {
        var attempts = 0
        while true {
            let fd = try Files.create(path, exclusive: true, readable: true)
            Files.holdAsWriter(fd)
            attempts += 1
            if Files.stillNames(path, fd) || attempts == 3 { return fd }
            Sys.close(fd)
        }
    }

    /// Puts a finished file in place (a symlink at its name is replaced, never followed).
    /// `durable` flushes it to disk first (`fsync`), and the directory after the rename, so
    /// the file is complete or absent across a crash too (README.md, "Output files"); without
    /// it, readers still see it complete or absent, and the kernel writes it back later.
    ///
    /// Throws ``TargetError/file(path:_:)`` with ``FileProblem/cannotFinish(_:)`` when `fsync(2)`
    /// or `rename(2)` fails (the temporary file is removed).
    public func commit(durable: Bool = true) throws(TargetError) {
        guard isFile, !committed, let temporary, let path else { return }
        do {
            if durable { try Sys.fsync(fd) }
            try Sys.rename(temporary, to: path)
            disarmCleanup()
            if durable { try Files.syncDirectory(directory) }
        } catch { throw .file(path: path, .cannotFinish(error)) }
        committed = true
    }

    /// Keeps an unfinished file as `FILE.partial`: the name it was kept under, or the `Errno` of
    /// `link(2)` when it could not be kept; nil when there is nothing to keep (standard output,
    /// a committed file). An existing `FILE.partial` is replaced when `replace`, else kept,
    /// and this one goes to the first free `FILE.partial.N` (N from 2 to 99): nothing that
    /// moved is lost without a word.
    public func keepPartial(replace: Bool) -> Result<String, Errno>? {
        guard isFile, !committed, let temporary, let path else { return nil }
        let partial = path + ".partial"
        if replace { try? Sys.unlink(partial) }
        var failure = Errno.fileExists
        for name in [partial] + (2...99).map({ "\(partial).\($0)" }) {
            do throws(Errno) {
                try Sys.link(temporary, to: name)
                return .success(name)
            } catch {
                failure = error
                guard error == .fileExists else { break }
            }
        }
        return .failure(failure)
    }

    deinit {
        if isFile {
            Sys.close(fd)
            if !committed, let temporary { try? Sys.unlink(temporary) }
            disarmCleanup()
        }
    }

    /// The temporary name is gone (renamed or removed): the handlers have nothing to remove.
    private func disarmCleanup() {
        if let cleanupSlot { Sys.disarmOutputCleanup(cleanupSlot) }
        cleanupSlot = nil
    }

    /// Writes `bytes` at `offset` from the start of the output; on standard output the gap
    /// since the last write (a skipped hole) is filled with zeros.
    ///
    /// Throws ``TargetError/file(path:_:)`` with ``FileProblem/cannotWrite(_:)`` when `pwrite(2)`
    /// (or `write(2)` on standard output) fails: a full disk, a closed pipe.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(TargetError) {
        if isFile {
            do { try Files.write(fd, bytes, at: offset) } catch { throw failure(error) }
            if startsWriteback { writeback.wrote(fd, upTo: offset + UInt64(bytes.count)) }
        } else {
            if offset > position { try zeros(offset - position) }
            try append(bytes)
        }
        position = offset + UInt64(bytes.count)
    }

    /// The pages of a file on a tmpfs made ahead of its writes (``PagesAhead``), the file given
    /// its final `length` now; nil for standard output or a file elsewhere.
    func pagesAhead(length: UInt64) -> PagesAhead? {
        isFile ? PagesAhead(fd: fd, length: length) : nil
    }

    /// Sets a file's final length (holes at the end read as zeros).
    ///
    /// Throws as ``write(_:at:)`` does, for the zeros written on standard output.
    public func finish(length: UInt64) throws(TargetError) {
        if isFile {
            try? Sys.ftruncate(fd, length: length)
        } else if length > position {
            try zeros(length - position)
        }
    }

    /// Writes one line of text (a newline is added).
    ///
    /// Throws as ``write(_:at:)`` does.
    public func line(_ text: String) throws(TargetError) {
        var text = text + "\n"
        try text.withUTF8 { raw in Result { () throws(TargetError) in try append(UnsafeRawBufferPointer(raw)) } }.get()
    }

    private func zeros(_ count: UInt64) throws(TargetError) {
        let block = [UInt8](repeating: 0, count: 64 << 10)
        var left = count
        while left > 0 {
            let n = Int(min(left, UInt64(block.count)))
            try block.withUnsafeBytes { raw in
                Result { () throws(TargetError) in try append(UnsafeRawBufferPointer(rebasing: raw[0..<n])) }
            }.get()
            left -= UInt64(n)
        }
    }

    private func append(_ bytes: UnsafeRawBufferPointer) throws(TargetError) {
        do { try Files.append(fd, bytes) } catch { throw failure(error) }
    }

    private func failure(_ errno: Errno) -> TargetError {
        .file(path: path ?? "standard output", .cannotWrite(errno))
    }
}

/// Starts the write-back of a file every ``step`` bytes as it is written in order
/// (`sync_file_range`, not waited for): a durable output's closing `fsync` then finds little
/// left, and the disk writes while the target is still read.
struct Writeback {
    /// How much is written between two starts of write-back.
    static let step: UInt64 = 8 << 20
    /// Where the next write-back starts.
    private var from: UInt64 = 0

    /// Notes that `fd` now holds every byte below `end`; starts their write-back once a
    /// ``step`` of them is waiting.
    mutating func wrote(_ fd: Int32, upTo end: UInt64) {
        guard end > from, end - from >= Self.step else { return }
        Sys.startWriteback(fd, offset: from, length: end - from)
        from = end
    }
}
