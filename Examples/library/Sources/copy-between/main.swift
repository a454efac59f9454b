// copy-between SOURCE_PID SOURCE_ADDR DESTINATION_PID DESTINATION_ADDR COUNT: copies COUNT
// bytes from one process into another, and reports the fault that stopped the copy early:
// on which side, in which process, at which address.
import Glibc
import VmIO
import VmioPtrace

let words = Array(CommandLine.arguments.dropFirst())
guard words.count == 5, let sourcePID = Int32(words[0]), let from = Address(words[1].dropFirst(2), radix: 16),
    let destinationPID = Int32(words[2]), let to = Address(words[3].dropFirst(2), radix: 16),
    let count = UInt64(words[4])
else { fatalError("usage: copy-between SOURCE_PID 0xADDR DESTINATION_PID 0xADDR COUNT") }

do {
    let source = try Target(pid: sourcePID)
    let destination = try Target(pid: destinationPID)
    // A write owner over the destination range for the whole copy, read owners over the
    // source a mapping at a time; with .stop the copy ends at the first fault.
    let report = try destination.copy(from: source, at: from, to: to, count: count, policy: .stop)
    print("copied \(report.moved) of \(count) bytes")
    if let stop = report.stop {
        print("stopped on the \(stop.side) side (\(stop.space)): \(stop.kind)")
    }
    exit(report.isComplete ? 0 : 2)
} catch {
    print("copy-between: \(error)")
    exit(1)
}
