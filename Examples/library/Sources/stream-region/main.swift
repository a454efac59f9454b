// stream-region PID ADDR COUNT: streams COUNT bytes at ADDR of process PID, 4 KiB at a
// time, with the process held stopped; prints each chunk and each hole it steps over, in
// order, then what moved.
import Glibc
import VmIO
import VmioPtrace

let words = Array(CommandLine.arguments.dropFirst())
guard words.count == 3, let pid = Int32(words[0]), let address = Address(words[1].dropFirst(2), radix: 16),
    let count = UInt64(words[2])
else { fatalError("usage: stream-region PID 0xADDR COUNT") }

do {
    let target = try Target(pid: pid)
    let range = try AddressRange(start: address, count: count)
    // Read on a thread of its own, one chunk ahead of this loop: memory stays flat whatever
    // the length. The target is let go at the end, or when this task is cancelled.
    for try await chunk in target.chunks(range, policy: .skip, chunkSize: 4096, stopTarget: true) {
        switch chunk {
        case .bytes(let at, let bytes):
            let sum = bytes.reduce(0) { $0 + Int($1) }
            print("chunk at 0x\(String(at, radix: 16)): \(bytes.count) bytes, sum \(sum)")
        case .hole(let hole):
            print("hole at 0x\(String(hole.address, radix: 16)): \(hole.length) bytes, \(hole.kind)")
        case .end(let report):
            print("moved \(report.moved) of \(report.requested) bytes")
            exit(report.isComplete ? 0 : 2)
        }
    }
} catch {
    print("stream-region: \(error)")
    exit(1)
}
