/// What one backend call moved: `moved` bytes from the start of the request, and why
/// it stopped when that is fewer than asked (`stop` is nil exactly when all moved).
public struct Transfer: Hashable, Sendable {
    /// The bytes that moved, from the start of the request.
    public var moved: Int
    /// Why the access stopped before it moved everything; nil when it did.
    public var stop: FaultKind?

    /// An access that moved `moved` bytes and then stopped for `stop` (nil: it moved them all).
    public init(moved: Int, stop: FaultKind?) {
        self.moved = moved
        self.stop = stop
    }
}

/// Moves bytes between the tool's memory and a target's. The Linux layer implements it
/// with `process_vm_readv`/`process_vm_writev`; tests plug in a fake that faults on
/// chosen pages.
///
/// Contract: a call moves a prefix of the request. `moved` is in `0...count`;
/// `stop` is nil if and only if `moved == count`; the first `moved` bytes at the
/// destination are the source's bytes and nothing past them is touched.
public protocol CopyBackend {
    /// Reads `destination.count` bytes at `address` in process `pid`.
    func read(pid: Int32, at address: Address, into destination: UnsafeMutableRawBufferPointer) -> Transfer
    /// Writes `source` at `address` in process `pid`.
    func write(pid: Int32, at address: Address, from source: UnsafeRawBufferPointer) -> Transfer
}

/// A backend for purely local work: any remote access stops at once.
public struct LocalOnlyBackend: CopyBackend, Sendable {
    /// A backend for local buffers.
    public init() {}
    /// Refuses any remote read: this backend has no system call behind it.
    public func read(pid: Int32, at address: Address, into destination: UnsafeMutableRawBufferPointer) -> Transfer {
        Transfer(moved: 0, stop: .other(errno: 0, message: "no backend for remote memory"))
    }
    /// Refuses any remote write: this backend has no system call behind it.
    public func write(pid: Int32, at address: Address, from source: UnsafeRawBufferPointer) -> Transfer {
        Transfer(moved: 0, stop: .other(errno: 0, message: "no backend for remote memory"))
    }
}

/// Size of the bounce buffer for remote→remote copies: throughput levels off at
/// about 1 MiB chunks (DESIGN.md section 2), and memory use stays flat.
public let bounceBufferSize = 1 << 20

/// One side of a transfer: an address in a space.
struct Endpoint {
    let space: AddressSpace
    let address: Address

    var pointer: UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(bitPattern: UInt(address))!
    }
}

/// Why a transfer moved fewer bytes than asked.
enum TransferStop {
    /// The backend stopped at a fault on one side.
    case fault(FaultKind, CopySide)
    /// The backend broke its contract.
    case broken(BackendViolation)
}

/// Moves up to `count` bytes from `source` to `destination`; returns how many moved and,
/// when fewer than `count`, why. A backend's answer is checked against its contract
/// before it is believed: a count out of `0...asked` trusts nothing of that call, a short
/// count without a cause trusts the count.
func transfer(
    from source: Endpoint, to destination: Endpoint, count: UInt64, backend: some CopyBackend
) -> (moved: UInt64, stop: TransferStop?) {
    guard count > 0 else { return (0, nil) }
    switch (source.space, destination.space) {
    case (.local, .local):
        // UnsafeMutableRawPointer.copyMemory is memmove: overlapping buffers are safe here.
        destination.pointer.copyMemory(from: source.pointer, byteCount: Int(count))
        return (count, nil)
    case (.remote(let pid), .local):
        let t = backend.read(
            pid: pid, at: source.address,
            into: UnsafeMutableRawBufferPointer(start: destination.pointer, count: Int(count)))
        return settle(t, count, .source)
    case (.local, .remote(let pid)):
        let t = backend.write(
            pid: pid, at: destination.address,
            from: UnsafeRawBufferPointer(start: source.pointer, count: Int(count)))
        return settle(t, count, .destination)
    case (.remote(let from), .remote(let to)):
        let bounce = UnsafeMutableRawBufferPointer.allocate(
            byteCount: Int(min(count, UInt64(bounceBufferSize))), alignment: 16)
        defer { bounce.deallocate() }
        var done: UInt64 = 0
        while done < count {
            let chunk = min(count - done, UInt64(bounce.count))
            let read = settle(
                backend.read(
                    pid: from, at: source.address + done,
                    into: UnsafeMutableRawBufferPointer(rebasing: bounce[0..<Int(chunk)])),
                chunk, .source)
            let written = settle(
                backend.write(
                    pid: to, at: destination.address + done,
                    from: UnsafeRawBufferPointer(rebasing: bounce[0..<Int(read.moved)])),
                read.moved, .destination)
            done += written.moved
            if let stop = written.stop ?? read.stop { return (done, stop) }
        }
        return (done, nil)
    }
}

/// Checks one backend answer to a request of `count` bytes against the contract.
private func settle(_ t: Transfer, _ count: UInt64, _ side: CopySide) -> (moved: UInt64, stop: TransferStop?) {
    guard t.moved >= 0, UInt64(t.moved) <= count else {
        return (0, .broken(.movedOutOfBounds(moved: t.moved, requested: count)))
    }
    let moved = UInt64(t.moved)
    if moved == count { return (moved, nil) }
    guard let kind = t.stop else { return (moved, .broken(.stoppedWithoutCause(moved: moved, requested: count))) }
    return (moved, .fault(kind, side))
}
