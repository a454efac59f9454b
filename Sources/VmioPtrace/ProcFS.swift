import Glibc
import SystemPackage
import VmIO

/// Reading `/proc`: whole small files, status fields, thread lists.
public enum ProcFS {
    /// Reads a whole file (proc files report size 0, so read until EOF). Proc files
    /// hand out about a page a call, so reads go through one reused buffer and only
    /// the bytes read are appended. Wraps `open(2)` and `read(2)`.
    public static func readAll(_ path: String) throws(Errno) -> [UInt8] {
        let fd: FileDescriptor
        do { fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec]) } catch {
            throw error as? Errno ?? .ioError
        }
        defer { try? fd.close() }
        var out: [UInt8] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let got: Int
            do { got = try fd.read(into: buffer) } catch { throw error as? Errno ?? .ioError }
            if got == 0 { return out }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[0..<got]))
        }
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
