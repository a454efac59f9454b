import Glibc
import SystemPackage
import VmIO

/// A copy backend over a kept-open `/proc/PID/mem`, with `pread(2)` / `pwrite(2)`.
///
/// Two uses: tiny reads (an 8-byte `pread` costs about 0.8 µs against 1.1 µs for
/// `process_vm_readv`), and forced writes into mappings the target cannot write
/// (patching read-only code), which `process_vm_writev` refuses. Only `--force`
/// takes the second path.
public final class ProcMemBackend: CopyBackend, @unchecked Sendable {
    public let pid: Int32
    private let fd: FileDescriptor

    /// Opens `/proc/PID/mem` for reading, or for reading and writing.
    public init(pid: Int32, writable: Bool) throws(TargetError) {
        self.pid = pid
        do {
            fd = try FileDescriptor.open(
                FilePath("/proc/\(pid)/mem"), writable ? .readWrite : .readOnly, options: [.closeOnExec])
        } catch {
            throw Diagnose.accessError(error as? Errno ?? .ioError, pid: pid, operation: "open /proc/\(pid)/mem of")
        }
    }

    deinit { try? fd.close() }

    /// Reads with `pread(2)`; the other pid must be this backend's.
    public func read(pid: Int32, at address: Address, into destination: UnsafeMutableRawBufferPointer) -> Transfer {
        guard pid == self.pid else { return mismatch(pid) }
        return loop(address: address, count: destination.count, operation: "pread") { done, chunk in
            pread(fd.rawValue, destination.baseAddress! + done, chunk, off_t(Int64(bitPattern: address + UInt64(done))))
        }
    }

    /// Writes with `pwrite(2)`, which the kernel allows into read-only private mappings (FOLL_FORCE).
    public func write(pid: Int32, at address: Address, from source: UnsafeRawBufferPointer) -> Transfer {
        guard pid == self.pid else { return mismatch(pid) }
        return loop(address: address, count: source.count, operation: "pwrite") { done, chunk in
            pwrite(fd.rawValue, source.baseAddress! + done, chunk, off_t(Int64(bitPattern: address + UInt64(done))))
        }
    }

    private func mismatch(_ other: Int32) -> Transfer {
        Transfer(moved: 0, stop: .other(errno: EINVAL, message: "/proc/\(pid)/mem cannot reach pid \(other)"))
    }

    private func loop(address: Address, count: Int, operation: String, call: (Int, Int) -> Int) -> Transfer {
        var done = 0
        while done < count {
            let chunk = min(count - done, ProcessVMBackend.maxBytesPerCall)
            let n = call(done, chunk)
            if n < 0 {
                let err = Errno(rawValue: errno)
                if err == .interrupted { continue }
                // An unmapped address reads as EIO; a dead target as ESRCH or EIO past its exit.
                let kind = ProcessVMBackend.fault(err, pid: pid, at: address + Address(done), operation: operation)
                if kind == .pageFault(address: address + Address(done)), !ProcFS.isAlive(pid) {
                    return Transfer(moved: done, stop: .targetGone)
                }
                return Transfer(moved: done, stop: kind)
            }
            if n == 0 {
                return Transfer(
                    moved: done, stop: ProcFS.isAlive(pid) ? .pageFault(address: address + Address(done)) : .targetGone)
            }
            done += n
        }
        return Transfer(moved: done, stop: nil)
    }
}
