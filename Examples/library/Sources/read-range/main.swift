// read-range PID ADDR COUNT: reads COUNT bytes at ADDR (0x hex) of process PID under a
// read owner, and says how far the read got when a fault stopped it early.
import Glibc
import VmIO
import VmioPtrace

let words = Array(CommandLine.arguments.dropFirst())
guard words.count == 3, let pid = Int32(words[0]), let address = Address(words[1].dropFirst(2), radix: 16),
    let count = UInt64(words[2])
else { fatalError("usage: read-range PID 0xADDR COUNT") }

do {
    let target = try Target(pid: pid)
    let range = try AddressRange(start: address, count: count)
    let buffer = LocalBuffer(count: Int(count))
    // The registry hands out a reader holding a new read owner over the range, and takes
    // the owner back when the closure ends, however it ends.
    let reader = try target.registry.reader(remote: pid, range: range, view: target.view)
    let outcome = try target.registry.lend(reader) { reader throws(VmIoError) in
        var writer = buffer.makeWriter()
        return try reader.readUntilFault(into: &writer, using: ProcessVMBackend())
    }
    // outcome.copied bytes moved: on a fault both cursors and owners advanced by exactly
    // that many, and outcome.stop says where and why the read stopped.
    let first = buffer.array.prefix(Int(min(outcome.copied, 8))).map { String($0, radix: 16) }
    print("read \(outcome.copied) of \(count) bytes: \(first.joined(separator: " "))")
    if let fault = outcome.stop?.faultAddress {
        print("stopped by a page fault at 0x\(String(fault, radix: 16))")
    }
    exit(outcome.isComplete ? 0 : 2)
} catch {
    print("read-range: \(error)")
    exit(1)
}
