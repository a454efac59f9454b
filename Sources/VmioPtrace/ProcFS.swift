import Glibc
import Synchronization
import SystemPackage
import VmIO

/// Reading `/proc`: whole small files, status fields, thread lists.
public enum ProcFS {
    /// One read buffer kept between calls (the maps of a big process are read often).
    private static let spare = Mutex<SpareBuffer?>(nil)

    /// A malloc'd block and its size; only ever held by one caller at a time.
    private struct SpareBuffer: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
        let capacity: Int
    }

    /// Reads a whole file (proc files report size 0, so read until EOF).
    /// Wraps `open(2)` and `read(2)`.
    public static func readAll(_ path: String) throws(Errno) -> [UInt8] {
        try withContents(of: path) { Array($0) }
    }

    /// Reads a whole file into one buffer that grows with `realloc` (which moves large
    /// blocks by remapping, not copying), and hands it to `body` without a copy: the maps
    /// of a big process are read and parsed at C speed. Wraps `open(2)` and `read(2)`.
    public static func withContents<R>(of path: String, _ body: (UnsafeRawBufferPointer) throws(Errno) -> R)
        throws(Errno) -> R
    {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        defer { close(fd) }
        // Reuse the last call's buffer (already faulted in) when no other thread holds it.
        let reused = spare.withLock { spare -> SpareBuffer? in
            defer { spare = nil }
            return spare
        }
        var buffer = reused?.pointer ?? malloc(128 << 10)!
        var capacity = reused?.capacity ?? 128 << 10
        defer {
            let keep = SpareBuffer(pointer: buffer, capacity: capacity)
            let kept =
                capacity <= 16 << 20
                && spare.withLock { spare -> Bool in
                    guard spare == nil else { return false }
                    spare = keep
                    return true
                }
            if !kept { free(buffer) }
        }
        var length = 0
        while true {
            if length == capacity {
                capacity *= 2
                guard let grown = realloc(buffer, capacity) else { throw Errno.noMemory }
                buffer = grown
            }
            let got = read(fd, buffer + length, capacity - length)
            if got < 0 {
                if errno == EINTR { continue }
                throw Errno(rawValue: errno)
            }
            if got == 0 { break }
            length += got
        }
        return try body(UnsafeRawBufferPointer(start: buffer, count: length))
    }

    /// A whole file as text.
    public static func readText(_ path: String) throws(Errno) -> String {
        String(decoding: try readAll(path), as: UTF8.self)
    }

    /// `/proc/PID/status` as key → value (values trimmed).
    public static func status(_ pid: Int32) throws(Errno) -> [String: String] {
        var fields: [String: String] = [:]
        for line in try readText("/proc/\(pid)/status").split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
        }
        return fields
    }

    /// The thread ids in `/proc/PID/task`.
    public static func threads(_ pid: Int32) throws(Errno) -> [Int32] {
        guard let dir = opendir("/proc/\(pid)/task") else { throw Errno(rawValue: errno) }
        defer { closedir(dir) }
        var tids: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if let tid = Int32(name) { tids.append(tid) }
        }
        return tids.sorted()
    }

    /// The one-letter state of a thread (`R`, `S`, `D`, `T`, `t`, `Z`…) from its `stat` line.
    public static func threadState(pid: Int32, tid: Int32) -> String {
        guard let stat = try? readText("/proc/\(pid)/task/\(tid)/stat"),
            let close = stat.lastIndex(of: ")")
        else { return "?" }
        return stat[stat.index(close, offsetBy: 2)...].split(separator: " ").first.map(String.init) ?? "?"
    }

    /// The process's command name (`/proc/PID/comm`).
    public static func command(_ pid: Int32) -> String {
        ((try? readText("/proc/\(pid)/comm")) ?? "?").trimmingCharacters(in: "\n")
    }

    /// Whether a process with this pid exists and is not a zombie.
    /// Whether `tid` (a `TracerPid`, which names the tracing *thread*) is a thread of this
    /// process.
    public static func isOwnThread(_ tid: Int32) -> Bool {
        tid == getpid() || (try? status(tid))?["Tgid"].flatMap { Int32($0) } == getpid()
    }

    /// Whether `pid` is a kernel thread (`PF_KTHREAD` in its `stat` flags): it has no user
    /// memory, and no process may trace it.
    public static func isKernelThread(_ pid: Int32) -> Bool {
        guard let stat = try? readText("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return false }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 6, let flags = UInt64(fields[6]) else { return false }
        return flags & 0x0020_0000 != 0  // PF_KTHREAD
    }

    /// A process that has begun to exit (`PF_EXITING` in the flags of its main thread's
    /// `stat`) counts as gone: its memory is being torn down, and accesses to it fail with
    /// errors (ESRCH, EPERM, EIO) that would otherwise read as faults or refusals.
    public static func isAlive(_ pid: Int32) -> Bool {
        guard let status = try? status(pid), let state = status["State"], !state.hasPrefix("Z"), !state.hasPrefix("X")
        else { return false }
        guard let stat = try? readText("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return false }
        // Fields after the command: state ppid pgrp session tty_nr tpgid flags …
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 6, let flags = UInt64(fields[6]) else { return true }
        return flags & 0x4 == 0  // PF_EXITING
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var s = self
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String { self[...].trimmingCharacters(in: set) }
}
