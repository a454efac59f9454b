// unwind-thread PID [TID]: the backtrace of one thread of process PID (by default its main
// thread), stopped alone for the unwind while its other threads run on.
import Glibc
import VmioPtrace

let words = Array(CommandLine.arguments.dropFirst())
guard (1...2).contains(words.count), let pid = Int32(words[0]), let tid = Int32(words.last!) else {
    fatalError("usage: unwind-thread PID [TID]")
}

do {
    let target = try Target(pid: pid)
    let unwinder = try Unwinder(pid: pid)
    let (frames, end) = try target.withThreadStopped(tid) { () throws(TargetError) in
        try unwinder.unwind(tid: tid, maxDepth: 64, view: target.view, symbols: target.symbols)
    }
    // Checks that the thread is back in the state it had before the stop.
    target.resume()
    for frame in frames {
        let name = frame.function.map { "\($0)+\(frame.functionOffset ?? 0)" } ?? "??"
        print("#\(frame.index) 0x\(String(frame.pc, radix: 16)) \(name) (\(frame.source))")
    }
    print("end: \(end)")
} catch {
    print("unwind-thread: \(error)")
    exit(1)
}
