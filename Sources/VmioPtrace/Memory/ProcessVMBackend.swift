import Glibc
import SystemPackage
import VmIO

/// The model's `CopyBackend` over `process_vm_readv(2)` / `process_vm_writev(2)` alone,
/// for any pid: the fast path without the ladder, and scattered reads of many pieces.
///
/// One remote iovec covers the whole request (bounded by ``maxBytesPerCall``): the
/// kernel's partial count stops at the exact page that faulted, so `address + count` is
/// the fault address, and splitting per page would cost a third of the throughput
/// (ARCHITECTURE.md). It explains nothing: a refusal is `permission` with its errno,
/// without the doctor's reason (``Target`` classifies errors with it).
public struct ProcessVMBackend: CopyBackend, Sendable {
    /// One call never moves more than 2 GiB − 4 KiB; ask for at most 1 GiB at a time.
    public static let maxBytesPerCall = ProcessMemory.maxBytesPerCall
    /// `IOV_MAX`: the most iovecs one call takes.
    public static let maxIovecs = 1024

    /// The backend; it holds nothing.
    public init() {}

    /// Reads through `process_vm_readv(2)`.
    public func read(pid: Int32, at address: Address, into destination: UnsafeMutableRawBufferPointer) -> Transfer {
        Self.transfer(ProcessMemory.processVMRead(pid: pid, at: address, into: destination), at: address)
    }

    /// Writes through `process_vm_writev(2)`.
    public func write(pid: Int32, at address: Address, from source: UnsafeRawBufferPointer) -> Transfer {
        Self.transfer(ProcessMemory.processVMWrite(pid: pid, at: address, from: source), at: address)
    }

    /// The model's view of an access: the fault, without liveness or a reason.
    static func transfer(_ access: Access, at address: Address) -> Transfer {
        Transfer(moved: access.moved, stop: access.stop.map { fault($0, at: address + Address(access.moved)) })
    }

    /// The kind of a stop, from its errno alone.
    static func fault(_ stop: AccessStop, at address: Address) -> FaultKind {
        switch stop.failure {
        case .fault: .pageFault(address: address)
        case .gone: .targetGone
        case .refused: .permission(reason: "\(stop.mechanism) refused (\(stop.errno))")
        case .notStopped, .other: .other(errno: stop.errno.rawValue, message: "\(stop.mechanism): \(stop.errno)")
        }
    }

    /// One piece of a scattered read: `count` bytes at `address` into `destination`.
    public struct Piece {
        /// Where the piece starts in the target.
        public var address: Address
        /// Where its bytes go; its count is the piece's length.
        public var destination: UnsafeMutableRawBufferPointer
        /// A piece of `destination.count` bytes at `address`.
        public init(address: Address, destination: UnsafeMutableRawBufferPointer) {
            self.address = address
            self.destination = destination
        }
    }

    /// Reads many independent pieces with up to ``maxIovecs`` iovecs a call. A fault
    /// stops only the piece it hits; the result holds one `Transfer` per piece.
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
                    remote.append(iovec(iov_base: Sys.remoteBase(p.address + UInt64(skip)), iov_len: len))
                    batchBytes += len
                }
                i += 1
            }
            var failure: Errno?
            var moved = 0
            if !local.isEmpty {
                do {
                    moved = try Sys.processVMReadv(
                        pid: pid, local: local, localCount: local.count, remote: remote, remoteCount: remote.count)
                } catch { failure = error }
            }
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
            if j >= i {
                next = i
                offsetInNext = 0
                continue
            }
            // Piece j stopped: record why, and go on with the one after it.
            let at = pieces[j].address + Address(results[j].moved)
            if let failure {
                let kind = Self.fault(AccessStop(failure, .processVMReadv), at: at)
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
