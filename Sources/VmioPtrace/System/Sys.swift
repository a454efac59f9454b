import CVmio
import Glibc
import SystemPackage
import VmIO

/// Every system call of the Linux layer, each wrapped once, thinly (as apple/swift-system
/// does): a failure is thrown as a typed `Errno`, and `EINTR` is retried here and nowhere
/// else. No other file of the project calls these functions of the C library directly;
/// ARCHITECTURE.md lists the layers above.
enum Sys {
    /// The calling thread's `errno`.
    static var lastErrno: Errno { Errno(rawValue: Glibc.errno) }

    /// Runs `call` until it does not fail with `EINTR`: its result when it is not negative,
    /// else the errno it failed with.
    @inline(__always)
    static func retryingInterrupts<T: BinaryInteger>(_ call: () -> T) throws(Errno) -> T {
        while true {
            let result = call()
            if result >= 0 { return result }
            let failure = lastErrno
            if failure != .interrupted { throw failure }
        }
    }

    /// A remote address as an iovec base.
    @inline(__always)
    static func remoteBase(_ address: Address) -> UnsafeMutableRawPointer? {
        UnsafeMutableRawPointer(bitPattern: UInt(address))
    }

    // MARK: cross-memory attach

    /// `process_vm_readv(2)` of one range: `local.count` bytes at `remote` in `pid`. Returns
    /// the count the kernel moved (short at the first page it could not read).
    static func processVMReadv(pid: Int32, into local: UnsafeMutableRawBufferPointer, from remote: Address)
        throws(Errno) -> Int
    {
        var l = iovec(iov_base: local.baseAddress, iov_len: local.count)
        var r = iovec(iov_base: remoteBase(remote), iov_len: local.count)
        return try processVMReadv(pid: pid, local: &l, localCount: 1, remote: &r, remoteCount: 1)
    }

    /// `process_vm_readv(2)` over iovec arrays (a scattered read: up to `IOV_MAX` a side).
    static func processVMReadv(
        pid: Int32, local: UnsafePointer<iovec>, localCount: Int, remote: UnsafePointer<iovec>, remoteCount: Int
    ) throws(Errno) -> Int {
        try retryingInterrupts {
            vmio_process_vm_readv(pid, local, UInt(localCount), remote, UInt(remoteCount))
        }
    }

    /// `process_vm_writev(2)` of one range: `local` to `remote` in `pid`. Returns the count moved.
    static func processVMWritev(pid: Int32, from local: UnsafeRawBufferPointer, to remote: Address)
        throws(Errno) -> Int
    {
        var l = iovec(iov_base: UnsafeMutableRawPointer(mutating: local.baseAddress), iov_len: local.count)
        var r = iovec(iov_base: remoteBase(remote), iov_len: local.count)
        return try retryingInterrupts { vmio_process_vm_writev(pid, &l, 1, &r, 1) }
    }

    // MARK: files

    /// `open(2)`, close-on-exec always.
    static func open(_ path: String, _ flags: Int32, mode: mode_t = 0) throws(Errno) -> Int32 {
        try retryingInterrupts { Glibc.open(path, flags | O_CLOEXEC, mode) }
    }

    /// `close(2)`. Its errors are not reported: Linux frees the descriptor whatever it says,
    /// so neither a retry nor a report could do anything (files that matter are `fsync`ed first).
    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// `read(2)`: at most `buffer.count` bytes; 0 at the end of the file.
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try retryingInterrupts { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    /// `write(2)`: at most `bytes.count` bytes.
    static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(Errno) -> Int {
        try retryingInterrupts { Glibc.write(fd, bytes.baseAddress, bytes.count) }
    }

    /// `getline(3)` on standard input into `line` (grown with `realloc`; the caller frees it):
    /// the line's length with its line end, 0 at the end of input (`vmio_stdin_getline`).
    ///
    /// Throws `EINTR` when a signal handler interrupted the read (the stream reads on at the
    /// next call), or the `Errno` of a `read(2)` that failed.
    static func standardInputLine(
        _ line: inout UnsafeMutablePointer<CChar>?, capacity: inout Int
    ) throws(Errno) -> Int {
        let count = vmio_stdin_getline(&line, &capacity)
        guard count < 0 else { return count }
        let failure = lastErrno
        if failure.rawValue == 0 { return 0 }
        throw failure
    }

    /// `pread(2)` at `offset`, taken as an unsigned 64-bit position (as `/proc/PID/mem`
    /// reads addresses); 0 at the end of the file.
    static func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(Errno)
        -> Int
    {
        try retryingInterrupts {
            Glibc.pread(fd, buffer.baseAddress, buffer.count, off_t(Int64(bitPattern: offset)))
        }
    }

    /// `pwrite(2)` at `offset` (unsigned, as ``pread(_:into:at:)``).
    static func pwrite(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(Errno) -> Int {
        try retryingInterrupts {
            Glibc.pwrite(fd, bytes.baseAddress, bytes.count, off_t(Int64(bitPattern: offset)))
        }
    }

    /// `fsync(2)`.
    static func fsync(_ fd: Int32) throws(Errno) {
        _ = try retryingInterrupts { Glibc.fsync(fd) }
    }

    /// `sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE)`: starts the write-back of
    /// that range's dirty pages without waiting for it (a later `fsync` finds less to do).
    /// Advisory: a file system that cannot is no error of the caller's, so nothing is thrown.
    static func startWriteback(_ fd: Int32, offset: UInt64, length: UInt64) {
        _ = vmio_start_writeback(fd, Int64(offset), Int64(length))
    }

    /// `mmap(2)`, `madvise(2)` with `MADV_POPULATE_WRITE`, `munmap(2)` (`vmio_populate_file`):
    /// the pages of `fd` from `offset` (page-aligned) for `length` bytes, inside the file's
    /// size, exist afterwards, allocated on this thread rather than by a later `write(2)`.
    static func populate(_ fd: Int32, offset: UInt64, length: UInt64) throws(Errno) {
        _ = try retryingInterrupts { vmio_populate_file(fd, Int64(offset), Int64(length)) }
    }

    /// `fstatfs(2)`'s `f_type` (`vmio_file_system_type`): which kind of file system holds `fd`.
    static func fileSystemType(_ fd: Int32) throws(Errno) -> Int64 {
        try retryingInterrupts { vmio_file_system_type(fd) }
    }

    /// `ftruncate(2)`.
    static func ftruncate(_ fd: Int32, length: UInt64) throws(Errno) {
        _ = try retryingInterrupts { Glibc.ftruncate(fd, off_t(length)) }
    }

    /// `lstat(2)`: the file itself, a symlink not followed.
    static func linkStatus(_ path: String) throws(Errno) -> stat {
        var st = stat()
        _ = try retryingInterrupts { lstat(path, &st) }
        return st
    }

    /// `stat(2)`.
    static func fileStatus(_ path: String) throws(Errno) -> stat {
        var st = stat()
        _ = try retryingInterrupts { stat(path, &st) }
        return st
    }

    /// `fstat(2)`.
    static func fileStatus(_ fd: Int32) throws(Errno) -> stat {
        var st = stat()
        _ = try retryingInterrupts { fstat(fd, &st) }
        return st
    }

    /// `rename(2)`.
    static func rename(_ from: String, to: String) throws(Errno) {
        _ = try retryingInterrupts { Glibc.rename(from, to) }
    }

    /// `link(2)`.
    static func link(_ from: String, to: String) throws(Errno) {
        _ = try retryingInterrupts { Glibc.link(from, to) }
    }

    /// `unlink(2)`.
    static func unlink(_ path: String) throws(Errno) {
        _ = try retryingInterrupts { Glibc.unlink(path) }
    }

    /// `flock(2)`: `LOCK_EX` (`wait` false: `LOCK_NB`, `EWOULDBLOCK` when another holds it).
    static func lockExclusively(_ fd: Int32, wait: Bool) throws(Errno) {
        // `flock` names a struct too; the function is picked by its type.
        let lockFile: (Int32, Int32) -> Int32 = flock
        _ = try retryingInterrupts { lockFile(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) }
    }

    /// `rmdir(2)`.
    static func rmdir(_ path: String) throws(Errno) {
        _ = try retryingInterrupts { Glibc.rmdir(path) }
    }

    /// Keeps a dump's directory where the signal handlers reach it: on SIGINT, SIGTERM,
    /// SIGHUP, SIGQUIT or SIGPIPE they remove the dump's files (and the directory when
    /// `created`) unless its manifest is in place (`vmio_dump_cleanup_arm`).
    static func armDumpCleanup(_ directory: String, created: Bool) {
        vmio_dump_cleanup_arm(directory, created ? 1 : 0)
    }

    /// The dump is finished, or cleaned up otherwise (`vmio_dump_cleanup_disarm`).
    static func disarmDumpCleanup() { vmio_dump_cleanup_disarm() }

    /// Keeps a temporary output file where the signal handlers reach it: on SIGINT, SIGTERM,
    /// SIGHUP, SIGQUIT or SIGPIPE they remove it (`vmio_output_cleanup_arm`). The slot, or nil
    /// when none is free.
    static func armOutputCleanup(_ path: String) -> Int32? {
        let slot = vmio_output_cleanup_arm(path)
        return slot < 0 ? nil : slot
    }

    /// The file is in place or removed (`vmio_output_cleanup_disarm`).
    static func disarmOutputCleanup(_ slot: Int32) { vmio_output_cleanup_disarm(slot) }

    /// `renameat2(2)` with `RENAME_EXCHANGE` (`vmio_rename_exchange`): `a` and `b` swap names
    /// at once. `EINVAL` where the file system cannot.
    static func exchange(_ a: String, _ b: String) throws(Errno) {
        _ = try retryingInterrupts { vmio_rename_exchange(a, b) }
    }

    /// `mkdir(2)`.
    static func mkdir(_ path: String, mode: mode_t) throws(Errno) {
        _ = try retryingInterrupts { Glibc.mkdir(path, mode) }
    }

    /// The names in a directory (`opendir(3)`, `readdir(3)`, `closedir(3)`), `.` and `..` left out.
    static func directoryEntries(_ path: String) throws(Errno) -> [String] {
        guard let dir = Glibc.opendir(path) else { throw lastErrno }
        defer { Glibc.closedir(dir) }
        var names: [String] = []
        let nameOffset = MemoryLayout<dirent>.offset(of: \.d_name)!
        while let entry = Glibc.readdir(dir) {
            // Up to its NUL only: a record is as long as its name (d_reclen), and the last in
            // glibc's buffer can end well before the 256 bytes `d_name` is declared with, so
            // copying the whole field would read past the buffer.
            let name = String(cString: (UnsafeRawPointer(entry) + nameOffset).assumingMemoryBound(to: CChar.self))
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// `isatty(3)` (a `TCGETS` ioctl): whether `fd` is a terminal.
    static func isTerminal(_ fd: Int32) -> Bool {
        Glibc.isatty(fd) == 1
    }

    // MARK: processes and signals

    /// `kill(2)`; signal 0 only checks that `pid` exists and may be signalled.
    static func kill(_ pid: Int32, _ signal: Int32) throws(Errno) {
        _ = try retryingInterrupts { Glibc.kill(pid, signal) }
    }

    /// `getpid(2)`.
    static var processID: Int32 { Glibc.getpid() }

    /// Names the process this tool kills when a fatal signal ends it (`vmio_set_owned_child`;
    /// 0 for none): the handlers ``Tracer`` installs send it SIGKILL first.
    static func setKilledOnFatalSignal(_ pid: Int32) { vmio_set_owned_child(pid) }

    /// The caller's ids: `getuid(2)`, `geteuid(2)`, `getgid(2)`, `getegid(2)`, and the
    /// supplementary groups of `getgroups(2)`.
    static var credentials: (uid: UInt32, euid: UInt32, gid: UInt32, egid: UInt32, groups: [UInt32]) {
        var groups: [UInt32] = []
        let n = Glibc.getgroups(0, nil)
        if n > 0 {
            var list = [gid_t](repeating: 0, count: Int(n))
            let got = Glibc.getgroups(n, &list)
            if got > 0 { groups = Array(list[0..<Int(got)]) }
        }
        return (Glibc.getuid(), Glibc.geteuid(), Glibc.getgid(), Glibc.getegid(), groups)
    }

    /// The kernel's release (`uname(2)`'s `release`, e.g. `6.1.0-18-amd64`).
    static var kernelRelease: String {
        var names = utsname()
        Glibc.uname(&names)
        return withUnsafeBytes(of: names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// The clock ticks a second of `/proc/PID/stat`'s times (`sysconf(3)` `_SC_CLK_TCK`).
    static var clockTicksPerSecond: Int {
        Glibc.sysconf(Int32(_SC_CLK_TCK))
    }

    /// `clock_gettime(2)` of `CLOCK_REALTIME`, in nanoseconds since the epoch.
    static var wallClockNanoseconds: UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// Runs `work` on a new thread (`pthread_create(3)`, which makes it with `clone(2)`); nil
    /// when no thread can be made. The caller joins it (``joinThread(_:)``).
    static func startThread(_ work: ConsumerWork) -> pthread_t? {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(work).toOpaque()
        let started = pthread_create(
            &thread, nil,
            { context in
                // Released here, on the worker, before it ends: the join sees it gone.
                Unmanaged<ConsumerWork>.fromOpaque(context!).takeRetainedValue().run()
                return nil
            }, context)
        guard started == 0 else {
            Unmanaged<ConsumerWork>.fromOpaque(context).release()
            return nil
        }
        return thread
    }

    /// Waits until `thread` has ended (`pthread_join(3)`).
    static func joinThread(_ thread: pthread_t) {
        pthread_join(thread, nil)
    }

    /// Gives the processor to another runnable thread (`sched_yield(2)`), between the polls of
    /// the event loop's busy window (ARCHITECTURE.md, "Traps").
    static func yieldProcessor() {
        _ = Glibc.sched_yield()
    }

    /// Sleeps about `microseconds` (`usleep(3)`), for the bounded polls of ptrace stops.
    static func pause(microseconds: UInt32) {
        Glibc.usleep(microseconds)
    }

    /// `fork(2)`, then `PTRACE_TRACEME` and `execvp(3)` in the child (the C shim's
    /// `vmio_spawn_traced`): the child stops with `SIGTRAP` at its first instruction.
    /// Returns its pid; the child's errno when the exec failed.
    static func spawnTraced(_ arguments: [String], nullStdin: Bool) throws(Errno) -> Int32 {
        var cArgs = arguments.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        let pid = vmio_spawn_traced(arguments[0], &cArgs, nullStdin ? 1 : 0)
        guard pid > 0 else { throw lastErrno }
        return pid
    }

    // MARK: waiting

    /// Waits at most `timeout` for process `pid` to exit: `pidfd_open(2)`, then `poll(2)` on
    /// it (readable once the process has exited). True when it has exited (or is gone). A
    /// `pid` that is a thread other than the main one (``Target/reachableID(of:)``) is waited
    /// for as a thread (`PIDFD_THREAD`, Linux 6.9): it ends when the process does.
    /// With `interruptible`, a signal ends the wait early (false: not exited).
    static func waitForExit(_ pid: Int32, within timeout: Duration, interruptible: Bool = false) throws(Errno) -> Bool {
        let fd: Int32
        do { fd = try retryingInterrupts { vmio_pidfd_open(pid) } } catch {
            if error == .noSuchProcess { return true }
            throw error
        }
        defer { close(fd) }
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(clamping: timeout.inMilliseconds)
        if interruptible {
            let ready = Glibc.poll(&entry, 1, milliseconds)
            if ready < 0 && errno == EINTR { return false }
            guard ready >= 0 else { throw Errno(rawValue: errno) }
            return ready > 0
        }
        return try retryingInterrupts { Glibc.poll(&entry, 1, milliseconds) } > 0
    }

    /// `waitpid(2)` with `__WALL` (threads and processes alike, ptrace stops included).
    /// Nil when `hang` is false and nothing has changed yet (`WNOHANG`), and when
    /// `interruptible` and a signal interrupted the wait (else `EINTR` is retried).
    static func waitpid(_ pid: Int32, hang: Bool, interruptible: Bool = false) throws(Errno) -> WaitStatus? {
        var raw: Int32 = 0
        let options = __WALL | (hang ? 0 : WNOHANG)
        let got: Int32
        if interruptible {
            got = Glibc.waitpid(pid, &raw, options)
            if got < 0 {
                let failure = lastErrno
                if failure == .interrupted { return nil }
                throw failure
            }
        } else {
            got = try retryingInterrupts { Glibc.waitpid(pid, &raw, options) }
        }
        return got == 0 ? nil : WaitStatus(raw)
    }
}
