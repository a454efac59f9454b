import ArgumentParser
import Glibc
import VmIO
import VmioPtrace
import VmioScript

struct Backtrace: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the stack of each thread of a process.",
        discussion: """
            Unwinds with libunwind-ptrace. By default each thread is stopped on its own while \
            its stack is read (the others run on); --snapshot stops every thread first, so all \
            stacks are from the same instant. Each frame shows its pc, the function and the \
            offset into it (from libunwind, else from the ELF symbol tables; ?? when neither \
            knows), and the module with the pc's offset from the module's first mapping \
            (MODULE+OFFSET is an ADDR the other commands accept). An unwind stops at the end of \
            the stack, at --depth frames, when a frame repeats an earlier pc and sp, or at a \
            frame libunwind cannot step past; the frames found so far are kept. A target that \
            exits during the unwind ends the command with status 4. --json prints {pid, \
            snapshot, memory, threads: [{tid, name, frames: [{index, pc, sp, function, \
            function_offset, symbol_source, module, module_offset, signal_frame}], end, \
            end_detail}]}.
            """
    )

    @Argument(help: "The target's pid.")
    var pid: PID

    @Option(help: "Only this thread (a thread id of the process).")
    var thread: Int32?

    @Flag(help: "Stop every thread before unwinding any (resumed afterwards on every path).")
    var snapshot = false

    @Option(help: "At most this many frames a thread.")
    var depth = 256

    @OptionGroup var attach: AttachOptions

    @Option(help: "How libunwind reads the target: cached (whole pages through process_vm_readv, kept in a 16-page cache) or peekdata (libunwind's own PTRACE_PEEKDATA a word; slower).")
    var memory: UnwindMemoryAccess = .cached

    @OptionGroup var options: TargetOptions

    func validate() throws {
        guard depth > 0 else { throw ValidationError("--depth must be at least 1") }
    }

    func run() throws {
        try runReporting(json: options.json) {
            guard pid.value != getpid() else { throw BadInput("vmio-ptrace cannot trace its own threads; give another pid") }
            let target = try Target(pid: pid.value)
            let threads = try selectThreads(of: target, thread)
            attach.apply(to: target)
            if snapshot { try target.stop() }
            defer { target.resume() }
            let unwinder = try Unwinder(pid: target.pid, access: memory)
            var traces: [ThreadBacktrace] = []
            for info in threads {
                do {
                    let (frames, end) = try target.withThreadStopped(info.tid) {
                        try unwinder.unwind(tid: info.tid, maxDepth: depth, view: target.view, symbols: target.symbols)
                    }
                    traces.append(ThreadBacktrace(thread: info, frames: frames, end: end))
                } catch is NoSuchThread where thread == nil {
                    continue  // the thread exited after it was listed: nothing to show
                } catch TargetError.noSuchProcess {
                    throw targetGone("pid \(pid) exited during the backtrace (while unwinding thread \(info.tid))",
                                     json: options.json)
                }
            }
            if options.json {
                print(JSONValue.object([
                    ("pid", .int(Int64(pid.value))), ("snapshot", .bool(snapshot)),
                    ("memory", .string(memory.rawValue)), ("threads", .array(traces.map(\.json))),
                ]).rendered)
            } else {
                for (i, trace) in traces.enumerated() {
                    if i > 0 { print("") }
                    print(trace.text)
                }
            }
            return .ok
        }
    }
}

extension UnwindMemoryAccess: ExpressibleByArgument {}

/// The threads a command works on: all of them, or the one `--thread` names (bad input
/// when the process has no such thread).
func selectThreads(of target: Target, _ tid: Int32?) throws -> [ThreadInfo] {
    let all = try target.threadInfos()
    guard let tid else { return all }
    guard let one = all.first(where: { $0.tid == tid }) else {
        throw BadInput("pid \(target.pid) has no thread \(tid) (its threads: \(all.map { String($0.tid) }.joined(separator: " ")))")
    }
    return [one]
}

/// Reports a target that went away part-way through a command the way ``runReporting``
/// reports errors (one line on stderr; with `json`, an error object on stdout) and returns
/// the error that ends the command with status 4.
func targetGone(_ message: String, json: Bool) -> Failed {
    printError("vmio-ptrace: " + message)
    if json {
        print(JSONValue.object([
            ("error", .string(message)), ("status", .int(Int64(ExitStatus.targetGone.rawValue))),
        ]).rendered)
    }
    return Failed(status: .targetGone)
}

extension StackFrame {
    /// `function+0xOFF`, or `??`.
    var functionText: String {
        guard let function else { return "??" }
        return functionOffset.map { $0 == 0 ? function : "\(function)+\($0.hex)" } ?? function
    }

    /// `basename+0xOFF`, or `?`.
    var moduleText: String {
        guard let module else { return "?" }
        let name = module.hasPrefix("[") ? module : String(module.split(separator: "/").last ?? Substring(module))
        return moduleOffset.map { "\(name)+\($0.hex)" } ?? name
    }

    var json: JSONValue {
        .object([
            ("index", .int(Int64(index))), ("pc", .string(pc.hex)), ("sp", .string(sp.hex)),
            ("function", function.map { .string($0) } ?? .null),
            ("function_offset", functionOffset.map { .string($0.hex) } ?? .null),
            ("symbol_source", symbolSource.map { .string($0.rawValue) } ?? .null),
            ("module", module.map { .string($0) } ?? .null),
            ("module_offset", moduleOffset.map { .string($0.hex) } ?? .null),
            ("signal_frame", .bool(isSignalFrame)),
        ])
    }
}

extension ThreadBacktrace {
    var text: String {
        var lines = ["thread \(thread.tid) (\(thread.name)):"]
        let width = String(max(frames.count - 1, 0)).count
        for frame in frames {
            let index = String(frame.index)
            let pc = String(frame.pc, radix: 16)
            lines.append("  #\(index)\(String(repeating: " ", count: width - index.count))  0x\(String(repeating: "0", count: max(0, 16 - pc.count)))\(pc) in \(frame.functionText) (\(frame.moduleText))\(frame.isSignalFrame ? " <signal frame>" : "")")
        }
        switch end {
        case .endOfStack: break
        case .depthLimit: lines.append("  -- \(end) (--depth N shows more)")
        default: lines.append("  -- \(end)")
        }
        return lines.joined(separator: "\n")
    }

    var json: JSONValue {
        .object([
            ("tid", .int(Int64(thread.tid))), ("name", .string(thread.name)),
            ("frames", .array(frames.map(\.json))),
            ("end", .string(end.kind)), ("end_detail", .string(end.description)),
        ])
    }
}
