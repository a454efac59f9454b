import Foundation
import Glibc
import SystemPackage
import VmIO

/// The files the tool writes and reads for itself (output files, dumps), over the
/// system-call wrappers, with errors as ``TargetError/file(path:_:)``.
enum Files {
    /// Creates `path` for writing (and reading, when `readable`: a shared mapping needs it)
    /// without following a symlink at its name; `exclusive` refuses an existing file, else one
    /// is truncated.
    static func create(_ path: String, exclusive: Bool, readable: Bool = false) throws(Errno) -> Int32 {
        let access = readable ? O_RDWR : O_WRONLY
        return try Sys.open(path, access | O_CREAT | O_NOFOLLOW | (exclusive ? O_EXCL : O_TRUNC), mode: 0o644)
    }

    /// Marks `fd` as a live writer's: an exclusive `flock(2)`, which the kernel lets go when
    /// the descriptor closes or its process dies, however it dies (SIGKILL included, which
    /// no handler sees). ``removeLeftovers(of:in:suffixes:remove:)`` leaves such files alone.
    static func holdAsWriter(_ fd: Int32) {
        try? Sys.lockExclusively(fd, wait: true)
    }

    /// Removes what writers killed by SIGKILL left beside `name` in `directory` (a
    /// temporary file or a dump's staging directory, `.NAME.PID.SUFFIX` for a `suffix` in
    /// `suffixes`): each entry that no live writer holds (an exclusive `flock(2)` on it is
    /// taken at once) and that is still the entry locked is handed to `remove`, lock held.
    /// A writer in another pid namespace is seen by its lock, not its pid. Best effort: an
    /// entry that cannot be opened or locked stays.
    static func removeLeftovers(
        of name: String, in directory: String, suffixes: [String], remove: (String) -> Void
    ) {
        let prefix = "." + name + "."
        guard let names = try? Sys.directoryEntries(directory.isEmpty ? "." : directory) else { return }
        for entry in names where entry.hasPrefix(prefix) {
            let rest = entry.dropFirst(prefix.count)
            guard let dot = rest.lastIndex(of: "."), suffixes.contains(String(rest[rest.index(after: dot)...])),
                !rest[..<dot].isEmpty, rest[..<dot].allSatisfy(\.isASCII), rest[..<dot].allSatisfy(\.isNumber)
            else { continue }
            let path = directory + entry
            guard let fd = try? Sys.open(path, O_RDONLY | O_NOFOLLOW) else { continue }
            defer { Sys.close(fd) }
            guard (try? Sys.lockExclusively(fd, wait: false)) != nil, stillNames(path, fd) else { continue }
            remove(path)
        }
    }

    /// Whether `path` still names the file open as `fd` (same device and inode, a symlink not
    /// followed).
    static func stillNames(_ path: String, _ fd: Int32) -> Bool {
        guard let open = try? Sys.fileStatus(fd), let named = try? Sys.linkStatus(path) else { return false }
        return open.st_dev == named.st_dev && open.st_ino == named.st_ino
    }

    /// Whether `fd` is on a tmpfs (`fstatfs(2)`: `TMPFS_MAGIC`), where a file's pages are
    /// memory allocated as it is written.
    static func isOnTmpfs(_ fd: Int32) -> Bool {
        (try? Sys.fileSystemType(fd)) == 0x0102_1994
    }

    /// Writes all of `bytes` at `offset` with `pwrite(2)`.
    static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(Errno) {
        var done = 0
        while done < bytes.count {
            done += try Sys.pwrite(
                fd, UnsafeRawBufferPointer(rebasing: bytes[done...]), at: offset + UInt64(done))
        }
    }

    /// Fills `buffer` from `offset` with `pread(2)`, call after call; the bytes read, fewer
    /// only where the file ends.
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(Errno) -> Int {
        var done = 0
        while done < buffer.count {
            let got = try Sys.pread(
                fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]), at: offset + UInt64(done))
            if got == 0 { break }
            done += got
        }
        return done
    }

    /// Writes all of `bytes` at the descriptor's position with `write(2)`.
    static func append(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(Errno) {
        var done = 0
        while done < bytes.count {
            done += try Sys.write(fd, UnsafeRawBufferPointer(rebasing: bytes[done...]))
        }
    }

    /// Flushes a directory's entries (a rename into it) to disk: `fsync(2)` of the directory.
    static func syncDirectory(_ path: String) throws(Errno) {
        let fd = try Sys.open(path.isEmpty ? "." : path, O_RDONLY | O_DIRECTORY)
        defer { Sys.close(fd) }
        try Sys.fsync(fd)
    }

    /// The kind of file at `path` without following a symlink (`S_IFREG`, `S_IFDIR`,
    /// `S_IFLNK`…), and its size; nil when there is nothing there.
    static func kind(_ path: String) -> (type: mode_t, size: UInt64)? {
        guard let st = try? Sys.linkStatus(path) else { return nil }
        return (st.st_mode & S_IFMT, UInt64(st.st_size))
    }

    /// A whole file's bytes.
    static func contents(of path: String) throws(Errno) -> [UInt8] {
        try ProcFS.readAll(path)
    }
}

/// Standard streams and terminals for the command line, without the C library there.
public enum Console {
    /// Writes all of `text` to descriptor `fd` (1 standard output, 2 standard error); a
    /// failure (a closed pipe) is not reported: there is nowhere left to report it.
    public static func write(fd: Int32, _ text: String) {
        var text = text
        text.withUTF8 { try? Files.append(fd, UnsafeRawBufferPointer($0)) }
    }

    /// Reads descriptor `fd` to its end (`read(2)`), so an empty character device such as
    /// `/dev/null` reads as empty.
    ///
    /// Throws ``TargetError/file(path:_:)`` with the `Errno` of a `read(2)` that fails.
    public static func readAll(fd: Int32) throws(TargetError) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n: Int
            let read = chunk.withUnsafeMutableBytes { raw in Result { () throws(Errno) in try Sys.read(fd, into: raw) }
            }
            do { n = try read.get() } catch {
                throw .file(path: fd == 0 ? "standard input" : "descriptor \(fd)", .failed(error))
            }
            if n == 0 { return bytes }
            bytes += chunk[0..<n]
        }
    }

    /// The next line of standard input without its line end ("\n" or "\r\n"); nil at the end
    /// of input or on a read error, and as soon as a fatal signal comes while breakpoints or
    /// watchpoints are set. The tool's handler then only records the signal, installed without
    /// SA_RESTART, so the read fails with EINTR and a session ends at once, not when its next
    /// line comes (Swift's readLine retries an EINTR).
    public static func nextInputLine() -> String? {
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while !Sys.deferredSignalPending {
            let count: Int
            do { count = try Sys.standardInputLine(&line, capacity: &capacity) } catch {
                if error == .interrupted { continue }
                return nil
            }
            guard count > 0, let line else { return nil }
            var bytes = UnsafeRawBufferPointer(start: line, count: count)
            if bytes.last == UInt8(ascii: "\n") {
                bytes = UnsafeRawBufferPointer(rebasing: bytes.dropLast())
                if bytes.last == UInt8(ascii: "\r") { bytes = UnsafeRawBufferPointer(rebasing: bytes.dropLast()) }
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        return nil
    }

    /// Whether `fd` is a terminal.
    public static func isTerminal(fd: Int32) -> Bool {
        Sys.isTerminal(fd)
    }
}

/// Allocates the pages of a file on a tmpfs ahead of the thread that writes it (README.md,
/// "Pages made ahead"). A tmpfs allocates each page as `write(2)` first reaches it, under the
/// file's inode lock, and that is most of the time a dump to a tmpfs takes; a shared
/// mapping's faults (``Sys/populate(_:offset:length:)``) allocate them outside that lock, so
/// the reading thread does part of that work while it waits for the writer.
final class PagesAhead {
    private let fd: Int32
    private let length: UInt64
    private var failed = false

    /// `VMIO_NO_PAGES_AHEAD=1` in the environment: no pages made ahead (the benchmark's row
    /// without them, measured in the same run).
    static let disabled = ProcessInfo.processInfo.environment["VMIO_NO_PAGES_AHEAD"] == "1"

    /// Gives `fd` its final `length` (pages can be made only inside it); nil when `fd` is not
    /// on a tmpfs, or its length cannot be set, or under `VMIO_NO_PAGES_AHEAD=1`.
    init?(fd: Int32, length: UInt64) {
        guard !Self.disabled, Files.isOnTmpfs(fd), (try? Sys.ftruncate(fd, length: length)) != nil else {
            return nil
        }
        self.fd = fd
        self.length = length
    }

    /// Makes the pages of bytes `offset..<offset + count`. Best effort: after one failure (no
    /// room left: the write that follows reports it) it does nothing more.
    func allocate(offset: UInt64, count: UInt64) {
        guard !failed else { return }
        let page: UInt64 = 4096
        let start = offset & ~(page - 1)
        let end = (min(offset.saturatingAdding(count), length) + page - 1) & ~(page - 1)
        guard start < end else { return }
        do throws(Errno) { try Sys.populate(fd, offset: start, length: end - start) } catch { failed = true }
    }

    /// The `ahead` work of ``Target/transferOverlapped(_:policy:chunkSize:slots:readerEnded:ahead:consume:)``
    /// for memory from `base` written at `fileOffset` on: makes the pages of the file where
    /// each piece of memory will go.
    func ahead(base: Address, fileOffset: UInt64) -> (AddressRange) -> Void {
        { piece in self.allocate(offset: fileOffset + (piece.start - base), count: piece.count) }
    }
}
