import Glibc
import SystemPackage
import VmIO

/// The memory of one process, reached down the read ladder: `process_vm_readv(2)` first
/// and, where that call is refused *as a whole* (`EPERM` under some seccomp profiles,
/// `ENOSYS` on kernels without cross-memory attach — with nothing moved), `pread(2)` on
/// `/proc/PID/mem`, then `PTRACE_PEEKDATA` when a thread of the target is held stopped.
/// A refused rung is not tried again. A fault (a short count, `EFAULT`, `EIO`) is never a
/// reason to step down: it is reported as it is, with the exact count.
///
/// Every call returns everything about it in its ``Access``: how many bytes moved, the
/// mechanism that moved them, and the errno and mechanism that stopped it. What the
/// errno means (a fault, a refusal, the target gone) is decided by the caller that
/// classifies it (``Target``), not here.
///
/// A value bound to one pid, with the `/proc/PID/mem` descriptors it opened (closed when
/// it ends); not copyable, so a descriptor is closed exactly once.
public struct ProcessMemory: ~Copyable {
    /// The process whose memory this reads and writes.
    public let pid: Int32
    /// The rungs refused as a whole, with the errno of the refusal.
    public private(set) var refused: [AccessMechanism: Errno] = [:]
    private var readDescriptor: Int32?
    private var writeDescriptor: Int32?

    /// One call never moves more than 2 GiB − 4 KiB; ask for at most 1 GiB at a time.
    public static let maxBytesPerCall = 1 << 30
    /// Reads of at most this many bytes try `pread` on `/proc/PID/mem` first (a typed value:
    /// about 0.8 µs against 1.1 µs for `process_vm_readv`, ARCHITECTURE.md).
    public static let smallReadLimit = 64

    /// The memory of process `pid`; nothing is opened until the first access that needs it.
    public init(pid: Int32) { self.pid = pid }

    deinit {
        if let readDescriptor { Sys.close(readDescriptor) }
        if let writeDescriptor { Sys.close(writeDescriptor) }
    }

    /// How writes may go.
    public enum WriteRoute: Sendable {
        /// `process_vm_writev` only: what the target itself could write.
        case direct
        /// `process_vm_writev`, and `pwrite` on `/proc/PID/mem` where it is refused as a
        /// whole (for a range the maps say the target may write: `pwrite` there would
        /// otherwise force its way into read-only mappings).
        case fallback
        /// `pwrite` on `/proc/PID/mem` only (`--force`: into mappings the target cannot write).
        case forced
    }

    // MARK: reads

    /// Reads `destination.count` bytes at `address` down the ladder. `view` is the maps
    /// snapshot: `pread` and `PTRACE_PEEKDATA` read with FOLL_FORCE, which gets through
    /// `---p` guard pages that `process_vm_readv` refuses, so the lower rungs stop where the
    /// view says the target itself could no longer read (`EFAULT` there). `stoppedThread` is
    /// a thread held in a ptrace stop by the calling thread, for `PTRACE_PEEKDATA`.
    public mutating func read(
        at address: Address, into destination: UnsafeMutableRawBufferPointer, view: MemView,
        stoppedThread: Int32? = nil
    ) -> Access {
        read(at: address, into: destination, view: view, stoppedThread: stoppedThread, helper: nil)
    }

    /// ``read(at:into:view:stoppedThread:)``; with `helper`, a read of ``splitReadLimit`` bytes
    /// or more through `process_vm_readv` is made in two halves at once
    /// (``splitRead(pid:at:into:helper:)``).
    mutating func read(
        at address: Address, into destination: UnsafeMutableRawBufferPointer, view: MemView,
        stoppedThread: Int32? = nil, helper: HelperThread?
    ) -> Access {
        guard destination.count > 0 else { return Access(moved: 0, mechanism: .processVMReadv) }
        // A tiny read (a typed value) is cheaper as one pread on the kept-open /proc/PID/mem;
        // only where the view says the target can read every byte. Any failure falls through
        // to the ladder, which reports faults exactly.
        if destination.count <= Self.smallReadLimit, refused[.pread] == nil,
            view.readablePrefix(address, destination.count) >= destination.count,
            let fd = try? descriptor(writable: false),
            (try? Sys.pread(fd, into: destination, at: address)) == destination.count
        {
            return Access(moved: destination.count, mechanism: .pread)
        }
        var lastRefusal: AccessStop?
        if let errno = refused[.processVMReadv] {
            lastRefusal = AccessStop(errno, .processVMReadv)
        } else {
            let access =
                helper.map { Self.splitRead(pid: pid, at: address, into: destination, helper: $0) }
                ?? Self.processVMRead(pid: pid, at: address, into: destination)
            guard let refusal = refusal(of: access) else { return access }
            lastRefusal = refusal
        }
        let readable = min(destination.count, max(0, view.readablePrefix(address, destination.count)))
        let allowed = UnsafeMutableRawBufferPointer(rebasing: destination[0..<readable])
        if let errno = refused[.pread] {
            lastRefusal = AccessStop(errno, .pread)
        } else {
            let access = readThroughProcMem(at: address, into: allowed, wanted: destination.count)
            guard let refusal = refusal(of: access) else { return access }
            lastRefusal = refusal
        }
        if let tid = stoppedThread {
            return Self.peek(tid: tid, at: address, into: allowed, wanted: destination.count)
        }
        // Every rung refused: the caller explains it (or finds the target gone).
        return Access(moved: 0, mechanism: lastRefusal!.mechanism, stop: lastRefusal)
    }

    /// Reads with `pread` on `/proc/PID/mem` only, with no limit from the maps: the way
    /// back for bytes a forced write put where the target itself cannot read.
    public mutating func readForced(at address: Address, into destination: UnsafeMutableRawBufferPointer) -> Access {
        let fd: Int32
        do { fd = try descriptor(writable: false) } catch {
            return Access(moved: 0, mechanism: .pread, stop: openFailure(error, .pread))
        }
        return Self.chunked(.pread, address: address, count: destination.count, shortCount: .endOfFile) {
            (done, chunk, offset) throws(Errno) in
            try Sys.pread(
                fd, into: UnsafeMutableRawBufferPointer(rebasing: destination[done..<done + chunk]), at: offset)
        }
    }

    /// A rung's result when it refused as a whole (nothing moved); the rung is marked refused.
    private mutating func refusal(of access: Access) -> AccessStop? {
        guard access.moved == 0, let stop = access.stop, AccessFailure.isRefusal(stop.errno) else { return nil }
        refused[stop.mechanism] = stop.errno
        return stop
    }

    /// `pread` of the `allowed` part of a read of `wanted` bytes: past it, `EFAULT`.
    private mutating func readThroughProcMem(
        at address: Address, into allowed: UnsafeMutableRawBufferPointer, wanted: Int
    ) -> Access {
        let fd: Int32
        do { fd = try descriptor(writable: false) } catch {
            return Access(moved: 0, mechanism: .pread, stop: openFailure(error, .pread))
        }
        let access = Self.chunked(.pread, address: address, count: allowed.count, shortCount: .endOfFile) {
            (done, chunk, offset) throws(Errno) in
            try Sys.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: allowed[done..<done + chunk]), at: offset)
        }
        if access.stop == nil, allowed.count < wanted {
            return Access(moved: access.moved, mechanism: .pread, stop: AccessStop(.badAddress, .pread))
        }
        return access
    }

    /// `process_vm_readv` over one local and one remote iovec, looping on the count; a
    /// short count is a fault at the next byte (`EFAULT`).
    static func processVMRead(pid: Int32, at address: Address, into destination: UnsafeMutableRawBufferPointer)
        -> Access
    {
        chunked(.processVMReadv, address: address, count: destination.count, shortCount: .fault) {
            (done, chunk, remote) throws(Errno) in
            try Sys.processVMReadv(
                pid: pid, into: UnsafeMutableRawBufferPointer(rebasing: destination[done..<done + chunk]), from: remote)
        }
    }

    /// The smallest read ``read(at:into:view:stoppedThread:helper:)`` splits between two threads.
    static let splitReadLimit = 256 << 10

    /// Where a split read of `count` bytes ends its first half (a whole number of pages), nil
    /// when it is not split; a search matches at the same place, each half on the thread that
    /// read it.
    static func splitPoint(_ count: Int) -> Int? {
        let half = count / 2 & ~0xfff
        return count >= splitReadLimit && half > 0 ? half : nil
    }

    /// ``processVMRead(pid:at:into:)`` in two halves at once: the first (a whole number of
    /// pages) on this thread, the rest on `helper`; a read under ``splitReadLimit`` in one call.
    /// The result is the one call's: a first half cut short is the read's end (what the second
    /// half moved is not counted), else the second half's count and stop follow it.
    static func splitRead(
        pid: Int32, at address: Address, into destination: UnsafeMutableRawBufferPointer, helper: HelperThread
    ) -> Access {
        guard let half = splitPoint(destination.count) else {
            return processVMRead(pid: pid, at: address, into: destination)
        }
        var first = Access(moved: 0, mechanism: .processVMReadv)
        var second = first
        helper.both(
            { first = processVMRead(pid: pid, at: address, into: .init(rebasing: destination[..<half])) },
            {
                second = processVMRead(
                    pid: pid, at: address + Address(half), into: .init(rebasing: destination[half...]))
            })
        guard first.moved == half, first.stop == nil else { return first }
        return Access(moved: half + second.moved, mechanism: .processVMReadv, stop: second.stop)
    }

    /// `PTRACE_PEEKDATA` of the `allowed` part of a read of `wanted` bytes, one aligned
    /// 8-byte word a call; past `allowed`, `EFAULT`.
    static func peek(tid: Int32, at address: Address, into allowed: UnsafeMutableRawBufferPointer, wanted: Int)
        -> Access
    {
        var done = 0
        while done < allowed.count {
            let at = address + Address(done)
            let word = at & ~7
            let skip = Int(at - word)
            var value: UInt64
            do { value = try Sys.ptracePeekData(tid, at: word) } catch {
                return Access(moved: done, mechanism: .peekdata, stop: AccessStop(error, .peekdata))
            }
            let n = min(8 - skip, allowed.count - done)
            withUnsafeBytes(of: &value) { raw in
                (allowed.baseAddress! + done).copyMemory(from: raw.baseAddress! + skip, byteCount: n)
            }
            done += n
        }
        if done < wanted { return Access(moved: done, mechanism: .peekdata, stop: AccessStop(.badAddress, .peekdata)) }
        return Access(moved: done, mechanism: .peekdata)
    }

    // MARK: writes

    /// Writes `source` at `address` by `route`.
    public mutating func write(at address: Address, from source: UnsafeRawBufferPointer, route: WriteRoute) -> Access {
        guard source.count > 0 else { return Access(moved: 0, mechanism: .processVMWritev) }
        if route != .forced {
            if route == .direct || refused[.processVMWritev] == nil {
                let access = Self.processVMWrite(pid: pid, at: address, from: source)
                guard route == .fallback, refusal(of: access) != nil else { return access }
            }
        }
        let fd: Int32
        do { fd = try descriptor(writable: true) } catch {
            return Access(moved: 0, mechanism: .pwrite, stop: openFailure(error, .pwrite))
        }
        return Self.chunked(.pwrite, address: address, count: source.count, shortCount: .endOfFile) {
            (done, chunk, offset) throws(Errno) in
            try Sys.pwrite(fd, UnsafeRawBufferPointer(rebasing: source[done..<done + chunk]), at: offset)
        }
    }

    /// Opens `/proc/PID/mem` for writing now, so that a forced write that cannot be made is
    /// refused before anything is written.
    ///
    /// Throws the `Errno` of `open(2)` (`EACCES`, `EPERM`, `ENOENT`…).
    public mutating func prepareForcedWrites() throws(Errno) {
        _ = try descriptor(writable: true)
    }

    /// `process_vm_writev` of one range, looping on the count; a short count is a fault at
    /// the next byte (`EFAULT`).
    static func processVMWrite(pid: Int32, at address: Address, from source: UnsafeRawBufferPointer) -> Access {
        chunked(.processVMWritev, address: address, count: source.count, shortCount: .fault) {
            (done, chunk, remote) throws(Errno) in
            try Sys.processVMWritev(
                pid: pid, from: UnsafeRawBufferPointer(rebasing: source[done..<done + chunk]), to: remote)
        }
    }

    // MARK: /proc/PID/mem

    /// The kept-open `/proc/PID/mem`, opened on first use.
    private mutating func descriptor(writable: Bool) throws(Errno) -> Int32 {
        if writable, let writeDescriptor { return writeDescriptor }
        if !writable, let readDescriptor { return readDescriptor }
        let fd = try Sys.open("/proc/\(pid)/mem", writable ? O_RDWR : O_RDONLY)
        if writable { writeDescriptor = fd } else { readDescriptor = fd }
        return fd
    }

    /// The stop of a rung whose `/proc/PID/mem` did not open: a missing file is the process gone.
    private func openFailure(_ errno: Errno, _ mechanism: AccessMechanism) -> AccessStop {
        AccessStop(errno == .noSuchFileOrDirectory ? .noSuchProcess : errno, mechanism)
    }

    /// What a call that moves fewer bytes than it was asked for means.
    enum ShortCount {
        /// `process_vm_readv` / `process_vm_writev`: it stopped at a fault at the next byte (`EFAULT`).
        case fault
        /// `pread` / `pwrite` on `/proc/PID/mem`: only 0, the end of file, is a fault at the next
        /// byte (`EIO`, as the kernel reports an unmapped address there); any other count goes on.
        case endOfFile
    }

    /// `count` bytes at `address` by `mechanism`, looping on the count: `call(done, chunk,
    /// address + done)` moves at most `chunk` bytes; `shortCount` says when fewer end it.
    static func chunked(
        _ mechanism: AccessMechanism, address: Address, count: Int, shortCount: ShortCount,
        call: (Int, Int, Address) throws(Errno) -> Int
    ) -> Access {
        var done = 0
        while done < count {
            let chunk = min(count - done, maxBytesPerCall)
            let n: Int
            do { n = try call(done, chunk, address + Address(done)) } catch {
                return Access(moved: done, mechanism: mechanism, stop: AccessStop(error, mechanism))
            }
            done += n
            let fault: Errno? =
                switch shortCount {
                case .fault: n < chunk ? .badAddress : nil
                case .endOfFile: n == 0 ? .ioError : nil
                }
            if let fault { return Access(moved: done, mechanism: mechanism, stop: AccessStop(fault, mechanism)) }
        }
        return Access(moved: done, mechanism: mechanism)
    }
}

extension MemView {
    /// How many of the `count` bytes at `address` lie in readable mappings, without a gap.
    func readablePrefix(_ address: Address, _ count: Int) -> Int {
        guard let range = try? AddressRange(start: address, count: UInt64(count)) else { return 0 }
        var next = address
        for m in mappings(intersecting: range) {
            guard m.start <= next, m.permissions.read else { break }
            next = min(range.end, m.end)
            if next == range.end { break }
        }
        return Int(next - address)
    }
}
