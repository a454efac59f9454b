// stream-region PID ADDR COUNT: streams COUNT bytes at ADDR of process PID, 4 KiB at a
// time, stepping over the pages it cannot read; prints each chunk, then each hole.
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
    // One 4 KiB buffer, reused: memory stays flat whatever the length.
    let report = try target.stream(range, policy: .skip, chunkSize: 4096) { at, chunk in
        let sum = chunk.reduce(0) { $0 + Int($1) }
        print("chunk at 0x\(String(at, radix: 16)): \(chunk.count) bytes, sum \(sum)")
        return true  // false ends the stream here
    }
    for hole in report.holes {
        print("hole at 0x\(String(hole.address, radix: 16)): \(hole.length) bytes, \(hole.kind)")
    }
    print("moved \(report.moved) of \(report.requested) bytes")
    exit(report.isComplete ? 0 : 2)
} catch {
    print("stream-region: \(error)")
    exit(1)
}
