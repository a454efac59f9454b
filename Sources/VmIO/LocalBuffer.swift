/// A buffer of the tool's own memory: the seed's "kernel" side, where copies never fail.
///
/// Its owners cover the buffer's real addresses, so owners of two buffers never
/// intersect, and readers and writers over it keep it alive.
public final class LocalBuffer: @unchecked Sendable {
    public let bytes: UnsafeMutableRawBufferPointer
    public let count: Int

    /// A zero-filled buffer of `count` bytes.
    public init(count: Int) {
        precondition(count >= 0, "a buffer cannot have a negative size")
        self.count = count
        // Allocate at least one byte so even an empty buffer has a real address.
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        self.bytes = UnsafeMutableRawBufferPointer(rebasing: storage[0..<count])
    }

    /// A buffer holding a copy of `contents`.
    public convenience init(_ contents: some Collection<UInt8>) {
        self.init(count: contents.count)
        bytes.copyBytes(from: contents)
    }

    deinit { UnsafeMutableRawPointer(mutating: baseAddress).deallocate() }

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

    /// A reader over the whole buffer (a fresh, infallible, kernel-side owner).
    public func makeReader() -> VmReader {
        let owner = try! VmIoOwner(range: range, isFallible: false, isKernel: true, memView: .read(memView))
        return VmReader(owner: owner, space: .local, storage: self)
    }

    /// A writer over the whole buffer (a fresh, infallible, kernel-side owner).
    public func makeWriter() -> VmWriter {
        let owner = try! VmIoOwner(range: range, isFallible: false, isKernel: true, memView: .write(memView))
        return VmWriter(owner: owner, space: .local, storage: self)
    }
}
