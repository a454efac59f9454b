import CVmio
import Glibc
import SystemPackage
import VmIO

/// The copy backend over `process_vm_readv(2)` / `process_vm_writev(2)`.
///
/// One remote iovec covers the whole request (bounded by ``maxBytesPerCall``): the
/// kernel's partial count stops at the exact page that faulted, so `address + count` is
/// the fault address, and splitting per page would cost a third of the throughput
/// (DESIGN.md section 2). Calls loop on the returned count.
public struct ProcessVMBackend: CopyBackend, Sendable {
    /// One call never moves more than 2 GiB − 4 KiB; ask for at most 1 GiB at a time.
    public static let maxBytesPerCall = 1 << 30
    /// `IOV_MAX`: the most iovecs one call takes.
    public static let maxIovecs = 1024

    public init() {}

    /// Reads through `process_vm_readv(2)`.
    public func read(pid: Int32, at address: Address, into destination: UnsafeMutableRawBufferPointer) -> Transfer {
        loop(pid: pid, address: address, count: destination.count, operation: "read") { done, chunk in
            var local = iovec(iov_base: destination.baseAddress! + done, iov_len: chunk)
            var remote = iovec(
                iov_base: UnsafeMutableRawPointer(bitPattern: UInt(address) + UInt(done)), iov_len: chunk)
            return vmio_process_vm_readv(pid, &local, 1, &remote, 1)
        }
    }

    /// Writes through `process_vm_writev(2)`.
    public func write(pid: Int32, at address: Address, from source: UnsafeRawBufferPointer) -> Transfer {
        loop(pid: pid, address: address, count: source.count, operation: "write") { done, chunk in
            var local = iovec(iov_base: UnsafeMutableRawPointer(mutating: source.baseAddress! + done), iov_len: chunk)
            var remote = iovec(
                iov_base: UnsafeMutableRawPointer(bitPattern: UInt(address) + UInt(done)), iov_len: chunk)
            return vmio_process_vm_writev(pid, &local, 1, &remote, 1)
        }
    }

    private func loop(
        pid: Int32, address: Address, count: Int, operation: String, call: (Int, Int) -> Int
    ) -> Transfer {
        var done = 0
        while done < count {
            let chunk = min(count - done, Self.maxBytesPerCall)
            let n = call(done, chunk)
            if n < 0 {
                let err = Errno(rawValue: vmio_errno())
                if err == .interrupted { continue }
                return Transfer(
                    moved: done, stop: Self.fault(err, pid: pid, at: address + Address(done), operation: operation))
            }
            done += n
            if n < chunk {
                // The kernel stopped at the first page it could not access.
                return Transfer(moved: done, stop: .pageFault(address: address + Address(done)))
            }
        }
        return Transfer(moved: done, stop: nil)
    }

    /// The kind of a failed call's errno.
    static func fault(_ err: Errno, pid: Int32, at address: Address, operation: String) -> FaultKind {
        switch err {
        case .badAddress, .ioError: .pageFault(address: address)
        case .noSuchProcess: .targetGone
        case .notPermitted, .permissionDenied:
            .permission(reason: Diagnose.permissionReason(pid: pid, operation: operation == "write" ? .write : .read))
        case .interrupted: .interrupted
        default: .other(errno: err.rawValue, message: "\(operation): \(err)")
        }
    }

    /// One piece of a scattered read: `count` bytes at `address` into `destination`.
    public struct Piece {
        public var address: Address
        public var destination: UnsafeMutableRawBufferPointer
        public init(address: Address, destination: UnsafeMutableRawBufferPointer) {
            self.address = address
            self.destination = destination
        }
    }

    /// Reads many independent pieces with up to ``maxIovecs`` iovecs a call. A fault
    /// stops only the piece it hits; the result holds one ``Transfer`` per piece.
    public func readScattered(pid: Int32, _ pieces: [Piece]) -> [Transfer] {
        var results = [Transfer](repeating: Transfer(moved: 0, stop: nil), count: pieces.count)
        var next = 0
        var offsetInNext = 0
        var local = [iovec](), remote = [iovec]()
        local.reserveCapacity(Self.maxIovecs)
        remote.reserveCapacity(Self.maxIovecs)
        while next < pieces.count {
            local.removeAll(keepingCapacity: true)
            remote.removeAll(keepingCapacity: true)
            var i = next
            var batchBytes = 0
            while i < pieces.count && local.count < Self.maxIovecs && batchBytes < Self.maxBytesPerCall {
                let skip = i == next ? offsetInNext : 0
                let p = pieces[i]
                let len = p.destination.count - skip
                if len > 0 {
                    local.append(iovec(iov_base: p.destination.baseAddress! + skip, iov_len: len))
                    remote.append(
                        iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(p.address) + UInt(skip)), iov_len: len)
                    )
                    batchBytes += len
                }
                i += 1
            }
            let n = local.isEmpty ? 0 : vmio_process_vm_readv(pid, local, UInt(local.count), remote, UInt(remote.count))
            var moved = n < 0 ? 0 : n
            // Credit the moved bytes to the pieces in order.
            var j = next
            var skip = offsetInNext
            while j < i {
                let want = pieces[j].destination.count - skip
                let got = min(want, moved)
                results[j].moved += got
                moved -= got
                if got < want { break }
                j += 1
                skip = 0
            }
            if j >= i { next = i; offsetInNext = 0; continue }
            // Piece j stopped: record why, and go on with the one after it.
            let at = pieces[j].address + Address(results[j].moved)
            if n < 0 {
                let err = Errno(rawValue: vmio_errno())
                if err == .interrupted { offsetInNext = results[j].moved; next = j; continue }
                let kind = Self.fault(err, pid: pid, at: at, operation: "read")
                results[j].stop = kind
                if kind == .targetGone || { if case .permission = kind { true } else { false } }() {
                    for k in (j + 1)..<pieces.count { results[k].stop = kind }
                    return results
                }
            } else {
                results[j].stop = .pageFault(address: at)
            }
            next = j + 1
            offsetInNext = 0
        }
        return results
    }
}
