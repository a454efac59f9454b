import Glibc
import SystemPackage
import VmIO

/// Reading `/proc`: whole small files, status fields, thread lists.
public enum ProcFS {
    /// One read buffer kept between calls (the maps of a big process are read often).
    /// A lock (`Locked`) makes it safe to share; only one caller at a time takes the buffer out.
    private static let spare = Locked<SpareBuffer?>(nil)

    /// A malloc'd block and its size. It is handed from caller to caller through the lock
    /// (taken out, then put back), never shared, so sending it between threads is safe.
    private struct SpareBuffer: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
        let capacity: Int
    }

    /// Reads a whole file (proc files report size 0, so read until EOF).
    ///
    /// Throws the `Errno` of `open(2)` or `read(2)`.
    public static func readAll(_ path: String) throws(Errno) -> [UInt8] {
        try withContents(of: path) { Array($0) }
    }

    /// Reads a whole file into one buffer that grows with `realloc` (which moves large
    /// blocks by remapping, not copying), and hands it to `body` without a copy: the maps
    /// of a big process are read and parsed at C speed.
    ///
    /// Throws the `Errno` of `open(2)` or `read(2)`, `ENOMEM` when the buffer cannot grow, or the
    /// one `body` throws.
    public static func withContents<R>(of path: String, _ body: (UnsafeRawBufferPointer) throws(Errno) -> R)
        throws(Errno) -> R
    {
        try withContents(of: path, overlapped: false, whileReading: { _ in }, body)
    }

    /// Reads a whole file as ``withContents(of:_:)`` does, in pieces of 64 KiB, and hands
    /// `progress` the text read so far after each piece, on a second thread while this one
    /// reads the next: the kernel prints `/proc/PID/maps` at about 230 ns a line, one page a
    /// `read(2)`, so the maps of a process with thousands of mappings are parsed in the time
    /// their text takes to print (README.md, "Benchmarks"). A file of one piece (most) is
    /// read without the second thread, and `progress` is not called. `body` gets the whole
    /// text once the file has ended; `progress` has seen prefixes of it, each a longer one.
    ///
    /// Throws as ``withContents(of:_:)`` does.
    public static func withContents<R>(
        of path: String, whileReading progress: (UnsafeRawBufferPointer) -> Void,
        _ body: (UnsafeRawBufferPointer) throws(Errno) -> R
    ) throws(Errno) -> R {
        try withContents(of: path, overlapped: true, whileReading: progress, body)
    }

    /// The pieces of ``withContents(of:whileReading:_:)``: small enough that the last one's
    /// `progress` is short, big enough that the hand-overs are few (16 and 32 KiB measured
    /// slower).
    private static let overlappedPiece = 64 << 10

    private static func withContents<R>(
        of path: String, overlapped: Bool, whileReading progress: (UnsafeRawBufferPointer) -> Void,
        _ body: (UnsafeRawBufferPointer) throws(Errno) -> R
    ) throws(Errno) -> R {
        let fd = try Sys.open(path, O_RDONLY)
        defer { Sys.close(fd) }
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
        /// Room for `count` more bytes; only between reads (the other thread reads the buffer
        /// while this one fills it).
        func makeRoom(_ count: Int) throws(Errno) {
            guard capacity - length < count else { return }
            while capacity - length < count { capacity *= 2 }
            guard let grown = realloc(buffer, capacity) else { throw Errno.noMemory }
            buffer = grown
        }
        /// Reads `count` bytes at the end of the text, fewer when the file ends first.
        func readPiece(_ count: Int) -> Result<Int, Errno> {
            Result { () throws(Errno) in
                var got = 0
                while got < count {
                    let more = try Sys.read(
                        fd, into: UnsafeMutableRawBufferPointer(start: buffer + length + got, count: count - got))
                    if more == 0 { break }
                    got += more
                }
                return got
            }
        }
        if overlapped {
            // The kernel prints /proc files a page a read. One piece first; when the file
            // goes on past it, each next piece is read while `progress` works on the text
            // before it.
            let piece = overlappedPiece
            try makeRoom(piece)
            let first = try readPiece(piece).get()
            length += first
            if first < piece { return try body(UnsafeRawBufferPointer(start: buffer, count: length)) }
            if let helper = spareHelper.withLock({ $0.take() }) ?? HelperThread(spinLimit: .milliseconds(1)) {
                defer {
                    helper.rest()
                    // Kept for the next call, unless another caller's is kept already.
                    let unkept = spareHelper.withLock { spare -> HelperThread? in
                        guard spare == nil else { return helper }
                        spare = helper
                        return nil
                    }
                    unkept?.stop()
                }
                while true {
                    try makeRoom(piece)
                    let sofar = UnsafeRawBufferPointer(start: buffer, count: length)
                    var got = Result<Int, Errno>.success(0)
                    helper.both({ got = readPiece(piece) }, { progress(sofar) })
                    let count = try got.get()
                    length += count
                    if count < piece { break }
                }
                return try body(UnsafeRawBufferPointer(start: buffer, count: length))
            }
        }
        while true {
            try makeRoom(1)
            let got = try readPiece(capacity - length).get()
            length += got
            if got == 0 || length < capacity { break }
        }
        return try body(UnsafeRawBufferPointer(start: buffer, count: length))
    }

    /// The helper thread of ``withContents(of:whileReading:_:)``, kept between calls like the
    /// buffer (a thread costs tens of microseconds to start); one caller at a time takes it.
    private static let spareHelper = Locked<HelperThread?>(nil)

    /// A whole file as text.
    ///
    /// Throws the `Errno` of `open(2)` or `read(2)`.
    public static func readText(_ path: String) throws(Errno) -> String {
        String(decoding: try readAll(path), as: UTF8.self)
    }

    /// `/proc/PID/status` as key → value (values trimmed).
    ///
    /// Throws the `Errno` of `open(2)` or `read(2)` (`ENOENT`: no such process).
    public static func status(_ pid: Int32) throws(Errno) -> [String: String] {
        parseStatus(try readText("/proc/\(pid)/status"))
    }

    /// `/proc/PID/task/TID/status` as key → value; nil when the thread is gone.
    static func threadStatus(pid: Int32, tid: Int32) -> [String: String]? {
        (try? readText("/proc/\(pid)/task/\(tid)/status")).map(parseStatus)
    }

    /// The fields of a `status` file as key → value (values trimmed).
    static func parseStatus(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
        }
        return fields
    }

    /// The thread ids in `/proc/PID/task`, sorted.
    ///
    /// Throws the `Errno` of `opendir(3)` (`ENOENT`: no such process).
    public static func threads(_ pid: Int32) throws(Errno) -> [Int32] {
        try Sys.directoryEntries("/proc/\(pid)/task").compactMap { Int32($0) }.sorted()
    }

    /// When the main thread of process `pid` has exited (a zombie) while other threads run
    /// on, the first of those; nil otherwise (the main thread lives, or every thread has
    /// exited, or the process is gone).
    public static func liveThreadIfMainThreadExited(_ pid: Int32) -> Int32? {
        guard stat(pid)?.isZombie == true else { return nil }
        return ((try? threads(pid)) ?? []).first { $0 != pid && !"ZXx?".contains(threadState(pid: pid, tid: $0)) }
    }

    /// The pids under `/proc` (its numeric names), sorted; none when it cannot be listed.
    public static func processIDs() -> [Int32] {
        ((try? Sys.directoryEntries("/proc")) ?? []).compactMap { Int32($0) }.filter { $0 > 0 }.sorted()
    }

    /// The one-letter state of a thread (`R`, `S`, `D`, `T`, `t`, `Z`…) from its `stat` line.
    public static func threadState(pid: Int32, tid: Int32) -> String {
        guard let text = try? readText("/proc/\(pid)/task/\(tid)/stat"), let stat = ProcessStat(text) else {
            return "?"
        }
        return String(stat.state)
    }

    /// The process's command name (`/proc/PID/comm`).
    public static func command(_ pid: Int32) -> String {
        ((try? readText("/proc/\(pid)/comm")) ?? "?").trimmingCharacters(in: "\n")
    }

    /// `/proc/PID/stat`, parsed; nil when it cannot be read.
    static func stat(_ pid: Int32) -> ProcessStat? {
        (try? readText("/proc/\(pid)/stat")).flatMap(ProcessStat.init)
    }

    /// When `pid` started (`/proc/PID/stat`, field 22, clock ticks after boot); nil when
    /// it cannot be read.
    public static func startTime(_ pid: Int32) -> UInt64? { stat(pid)?.startTime ?? nil }

    /// Whether a process with this pid exists, visible in `/proc` or not: `kill(pid, 0)`
    /// succeeds, or fails only for want of permission.
    static func exists(_ pid: Int32) -> Bool {
        do {
            try Sys.kill(pid, 0)
            return true
        } catch {
            return error == .notPermitted
        }
    }

    /// The pid of this process.
    public static var ownPID: Int32 { Sys.processID }

    /// Whether `tid` (a `TracerPid`, which names the tracing *thread*) is a thread of this
    /// process.
    public static func isOwnThread(_ tid: Int32) -> Bool {
        tid == Sys.processID || (try? status(tid))?["Tgid"].flatMap { Int32($0) } == Sys.processID
    }

    /// Whether `pid` is a kernel thread (`PF_KTHREAD` in its `stat` flags): it has no user
    /// memory, and no process may trace it.
    public static func isKernelThread(_ pid: Int32) -> Bool {
        stat(pid)?.isKernelThread ?? false
    }

    /// Whether a process with this pid exists and is not a zombie. A process that has begun
    /// to exit (`PF_EXITING` in the flags of its main thread's `stat`) counts as gone: its
    /// memory is being torn down, and accesses to it fail with errors (ESRCH, EPERM, EIO)
    /// that would otherwise read as faults or refusals.
    public static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = stat(pid) else { return false }
        return !stat.isZombie && !stat.isExiting
    }
}

/// The fields of `/proc/PID/stat` the tool uses.
struct ProcessStat: Hashable, Sendable {
    /// `PF_EXITING` of `include/linux/sched.h`: the task has begun to exit.
    static let exitingFlag: UInt64 = 0x0000_0004
    /// `PF_KTHREAD` of `include/linux/sched.h`: a kernel thread.
    static let kernelThreadFlag: UInt64 = 0x0020_0000

    /// The state letter (`R`, `S`, `D`, `T`, `t`, `Z`, `X`…).
    let state: Character
    let parent: Int32
    /// The task's `PF_*` flags.
    let flags: UInt64
    /// When the process started, in clock ticks after boot (field 22): with the pid, it
    /// names one process (a pid is reused, its start time is not).
    let startTime: UInt64?

    /// Parses a `stat` line: `PID (COMM) STATE PPID PGRP SESSION TTY TPGID FLAGS …` (the
    /// command may hold spaces and parentheses, so fields are counted from the last `)`).
    init?(_ text: String) {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 6, let letter = fields[0].first, let parent = Int32(fields[1]),
            let flags = UInt64(fields[6])
        else { return nil }
        startTime = fields.count > 19 ? UInt64(fields[19]) : nil
        state = letter
        self.parent = parent
        self.flags = flags
    }

    var isZombie: Bool { state == "Z" || state == "X" || state == "x" }
    var isExiting: Bool { flags & Self.exitingFlag != 0 }
    var isKernelThread: Bool { flags & Self.kernelThreadFlag != 0 }
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
