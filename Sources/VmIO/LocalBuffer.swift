/// A buffer of the tool's own memory: the seed's "kernel" side, where copies never fail.
///
/// Its owners cover the buffer's real addresses, so owners of two buffers never
/// intersect, and readers and writers over it keep it alive.
///
/// Not `Sendable`: its bytes are shared mutable memory, written through any writer over
/// it, with nothing to order those writes against another thread.
public final class LocalBuffer {
    /// The buffer's memory, `count` bytes; the buffer frees it when it goes.
    public let bytes: UnsafeMutableRawBufferPointer
    /// The size of the buffer in bytes.
    public let count: Int

    /// A zero-filled buffer of `count` bytes (an empty one for a negative count).
    public init(count: Int) {
        self.count = max(count, 0)
        // Allocate at least one byte so even an empty buffer has a real address.
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        self.bytes = UnsafeMutableRawBufferPointer(rebasing: storage[0..<self.count])
    }

    /// A buffer holding a copy of `contents`.
    public convenience init(_ contents: some Collection<UInt8>) {
        self.init(count: contents.count)
        bytes.copyBytes(from: contents)
    }

    deinit { baseAddress.deallocate() }

    var baseAddress: UnsafeMutableRawPointer { bytes.baseAddress! }

    /// The buffer's addresses in the tool's own address space.
    public var range: AddressRange {
        let base = Address(UInt(bitPattern: baseAddress))
        return AddressRange(uncheckedStart: base, end: base + Address(count))
    }

    /// A one-mapping view of the buffer (`rw-p`, named `[vmio-local]`).
    public var memView: MemView {
        MemView(
            uncheckedMappings: [Mapping(range: range, permissions: .readWrite, path: "[vmio-local]")], generation: 0)
    }

    /// The contents as an array.
    public var array: [UInt8] { Array(bytes) }

    /// A fresh local owner (infallible, kernel) over the whole buffer.
    public func makeOwner(_ access: OwnerRegistry.Access) -> VmIoOwner {
        // Restricted as every owner's view is (an empty buffer's view has no mapping).
        let view = memView.restricted(to: range)
        return VmIoOwner(
            unchecked: freshOwnerID(), range: range, isFallible: false, isKernel: true,
            memView: access == .read ? .read(view) : .write(view))
    }

    /// A reader over the whole buffer (a fresh, infallible, kernel-side owner).
    public func makeReader() -> VmReader {
        VmReader(owner: makeOwner(.read), space: .local, storage: self)
    }

    /// A writer over the whole buffer (a fresh, infallible, kernel-side owner).
    public func makeWriter() -> VmWriter {
        VmWriter(owner: makeOwner(.write), space: .local, storage: self)
    }
}
