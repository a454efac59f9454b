import ArgumentParser
import VmIO
import VmioPtrace

/// `backtrace`: the stack of each thread, each thread stopped on its own while unwound
/// (every thread first with `--snapshot`).
public struct BacktraceCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "backtrace",
        abstract: "Show the stack of each thread of a process.",
        discussion: """
            Unwinds with elfutils' libdw: CFI from .eh_frame, else .debug_frame, else the \
            frame-pointer chain. By default each thread is stopped on its own while its stack is \
            read (the others run on); --snapshot stops every thread first, so all stacks are from \
            the same instant. Each frame shows its pc, the function and the offset into it (C++ \
            names demangled; ?? when no symbol table knows), and a label that is an ADDR resolving \
            to the pc. A frame found by the frame-pointer chain, and every frame above it, is \
            marked <unverified: ...>. An unwind ends at the outermost frame by the CFI rules, at \
            --depth frames, when a frame repeats an earlier pc and sp, or where no caller is found \
            (an unwind error); the frames found so far are kept. A target that exits during the \
            unwind ends the command with status 4. --json prints {pid, snapshot, memory, threads: \
            [{tid, name, frames: [{index, pc, sp, function, function_mangled, function_offset, \
            symbol_source, module, module_offset, label, signal_frame, found_by, reliable}], end, \
            end_detail}]}.
            """
    )

    @Option(help: "Only this thread (a thread id of the process).")
    public var thread: Int32?

    @Flag(help: "Stop every thread before unwinding any (resumed afterwards on every path).")
    public var snapshot = false

    @Option(help: "At most this many frames a thread.")
    public var depth = 256

    @OptionGroup public var attach: AttachOptions

    @Option(
        help: """
            How the unwinder reads the target: cached (whole pages through process_vm_readv, kept in \
            a 16-page cache) or peekdata (one PTRACE_PEEKDATA a word; slower).
            """
    )
    public var memory: UnwindMemoryAccess = .cached

    public init() {}

    public func validate() throws {
        guard depth > 0 else { throw ValidationError("--depth must be at least 1") }
    }

    public func run(in context: CommandContext) throws -> Outcome {
        try context.withTarget(attach: attach) { target in
            try refuseSelf(target)
            let threads = try selectThreads(of: target, thread)
            let wasStopped = target.isStopped
            if snapshot { try target.stop() }
            defer { if snapshot && !wasStopped { target.resume() } }
            let unwinder = try Unwinder(pid: target.pid, access: memory)
            // Threads stopped one at a time: the run state is checked once, after the last.
            defer { target.finishThreadStops() }
            let traces = try eachThreadStopped(
                threads, of: target, asked: thread, exited: { "during the backtrace (while unwinding thread \($0))" }
            ) { info throws(TargetError) in
                let (frames, end) = try unwinder.unwind(
                    tid: info.tid, maxDepth: depth, view: target.view, symbols: target.symbols)
                return ThreadBacktrace(thread: info, frames: frames, end: end)
            }
            var o = Outcome()
            o.json = [
                ("pid", .int(Int64(target.pid))), ("snapshot", .bool(snapshot)),
                ("memory", .string(memory.rawValue)), ("threads", .array(traces.map(\.json))),
            ]
            o.text = traces.enumerated().flatMap { i, trace in (i > 0 ? [""] : []) + [trace.text] }
            o.value = .int(Int128(traces.first?.frames.count ?? 0))
            return o
        }
    }
}

/// `regs`: the general registers of each thread, each stopped on its own while read.
public struct RegsCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "regs",
        abstract: "Show the general registers of each thread of a process.",
        discussion: """
            Each thread is stopped on its own (PTRACE_SEIZE + PTRACE_INTERRUPT) while its \
            registers are read with PTRACE_GETREGS, then let go; the others run on. Shows rip, \
            rsp, rbp, rax…r15, eflags, the segment registers, fs_base, gs_base and orig_rax, \
            with the symbol and module rip is in. --json prints {pid, threads: [{tid, name, \
            registers: {rip, rsp, …} (each a 0x hex string), rip_symbol, rip_module}]}.
            """
    )

    @Option(help: "Only this thread (a thread id of the process).")
    public var thread: Int32?

    @OptionGroup public var attach: AttachOptions

    public init() {}

    public func run(in context: CommandContext) throws -> Outcome {
        try context.withTarget(attach: attach) { target in
            try refuseSelf(target)
            let threads = try selectThreads(of: target, thread)
            defer { target.finishThreadStops() }
            let results = try eachThreadStopped(
                threads, of: target, asked: thread, exited: { "while its registers were read (thread \($0))" }
            ) { info throws(TargetError) in (info, try Registers.read(pid: target.pid, tid: info.tid)) }
            return outcome(target, results)
        }
    }

    private func outcome(_ target: Target, _ results: [(ThreadInfo, Registers)]) -> Outcome {
        var o = Outcome()
        o.json = [
            ("pid", .int(Int64(target.pid))),
            (
                "threads",
                .array(
                    results.map { info, registers in
                        let symbol = target.symbols.symbolize(registers.rip)
                        return .object([
                            ("tid", .int(Int64(info.tid))), ("name", .string(info.name)),
                            ("registers", .object(registers.named.map { ($0.name, .string($0.value.hex)) })),
                            (
                                "syscall",
                                registers["orig_rax"].flatMap { SystemCall.name($0, abi: target.abi) }.map {
                                    .string($0)
                                } ?? .null
                            ),
                            ("rip_symbol", symbol.map { .string($0.description) } ?? .null),
                            (
                                "rip_module",
                                module(of: registers.rip, in: target).map { .string($0) } ?? .null
                            ),
                        ])
                    })
            ),
        ]
        for (i, (info, registers)) in results.enumerated() {
            if i > 0 { o.text.append("") }
            o.text.append("thread \(info.tid) (\(info.name)):")
            // One column for every value: the longest name (orig_rax) and a space.
            let width = Registers.names.map(\.count).max()! + 1
            for (name, value) in registers.named {
                let hex = String(value, radix: 16)
                let label = name + String(repeating: " ", count: width - name.count)
                var line = "  \(label)0x\(String(repeating: "0", count: max(0, 16 - hex.count)))\(hex)"
                if name == "rip" {
                    let symbol = target.symbols.symbolize(value)?.description ?? "??"
                    line += "  \(symbol) (\(module(of: value, in: target) ?? "?"))"
                }
                if name == "orig_rax", let call = SystemCall.name(value, abi: target.abi) {
                    line += "  (\(call))"
                }
                o.text.append(line)
            }
        }
        // rip where one value is used (`let pc = regs`), every register by name (`$r.rsp`).
        o.value = results.first.map { info, registers in
            .record(
                Record(
                    [("tid", .int(Int128(info.tid)))] + registers.named.map { ($0.name, .int(Int128($0.value))) },
                    primary: .int(Int128(registers.rip)), summary: registers.rip.hex))
        }
        return o
    }
}

/// The file mapped at `address`, or nil for an anonymous mapping or none (as backtrace says).
private func module(of address: UInt64, in target: Target) -> String? {
    guard let path = target.view.translate(address)?.mapping.path, !path.isEmpty else { return nil }
    return path
}

/// Backtraces and registers trace threads: not this tool's own.
private func refuseSelf(_ target: Target) throws {
    guard target.pid != ProcFS.ownPID else {
        throw CommandError.badInput("vmio-ptrace cannot trace its own threads; give another pid")
    }
}

/// The threads a command works on: all of them, or the one `tid` names (bad input when the
/// process has no such thread).
private func selectThreads(of target: Target, _ tid: Int32?) throws -> [ThreadInfo] {
    let all = try target.threadInfos()
    guard let tid else { return all }
    guard let one = all.first(where: { $0.tid == tid }) else {
        throw CommandError.badInput("pid \(target.pid) has no thread \(tid) (\(describeThreads(all.map(\.tid))))")
    }
    return [one]
}

/// `body` on each of `threads`, each held in a stop of its own; what it gave, in order. A thread
/// that exited after it was listed is left out unless `--thread` asked for it; the process
/// exiting ends the command: "pid P exited \(exited(tid))".
private func eachThreadStopped<T>(
    _ threads: [ThreadInfo], of target: Target, asked: Int32?, exited: (Int32) -> String,
    _ body: (ThreadInfo) throws(TargetError) -> T
) throws -> [T] {
    var results: [T] = []
    for info in threads {
        do throws(TargetError) {
            results.append(try target.withThreadStopped(info.tid) { () throws(TargetError) in try body(info) })
        } catch {
            // A switch, not `catch TargetError.x`: that pattern over a typed throw crashes Swift 6.3's SILGen.
            switch error {
            case .noSuchThread where asked == nil: continue  // the thread exited after it was listed
            case .noSuchProcess: throw CommandError.targetGone("pid \(target.pid) exited \(exited(info.tid))")
            default: throw error
            }
        }
    }
    return results
}

/// `its 3 threads: 10 11 12`, or for many `its 1021 threads: 10 11 12 13 14 … 1030` (a few
/// of them, and how many: a list of a thousand ids helps nobody).
func describeThreads(_ tids: [Int32]) -> String {
    let count = "its \(tids.count) thread\(tids.count == 1 ? "" : "s")"
    guard tids.count > 8 else { return "\(count): \(tids.map(String.init).joined(separator: " "))" }
    return "\(count): \(tids.prefix(5).map(String.init).joined(separator: " ")) … \(tids.last!)"
}

extension StackFrame {
    /// `function+0xOFF`, or `??`.
    public var functionText: String {
        guard let function else { return "??" }
        return functionOffset.map { $0 == 0 ? function : "\(function)+\($0.hex)" } ?? function
    }

    /// ` <unverified: …>` for a frame that rests on a frame-pointer guess, else empty.
    public var reliabilityNote: String {
        if isReliable { return "" }
        return source == .framePointer
            ? " <unverified: found by frame pointer>" : " <unverified: above a frame-pointer frame>"
    }

    /// The frame's label (`libc.so.6+0x885d8`, an ADDR that resolves to pc), or `?`.
    public var moduleText: String { label ?? "?" }

    public var json: JSONValue {
        .object([
            ("index", .int(Int64(index))), ("pc", .string(pc.hex)), ("sp", .string(sp.hex)),
            ("function", function.map { .string($0) } ?? .null),
            ("function_mangled", mangledFunction.map { .string($0) } ?? .null),
            ("function_offset", functionOffset.map { .string($0.hex) } ?? .null),
            ("symbol_source", symbolSource.map { .string($0.rawValue) } ?? .null),
            ("module", module.map { .string($0) } ?? .null),
            ("module_offset", moduleOffset.map { .string($0.hex) } ?? .null),
            ("label", label.map { .string($0) } ?? .null),
            ("signal_frame", .bool(isSignalFrame)),
            ("found_by", .string(source.rawValue)), ("reliable", .bool(isReliable)),
        ])
    }
}

extension ThreadBacktrace {
    public var text: String {
        var lines = ["thread \(thread.tid) (\(thread.name)):"]
        let width = String(max(frames.count - 1, 0)).count
        for frame in frames {
            let index = String(frame.index)
            let pc = String(frame.pc, radix: 16)
            let padding = String(repeating: " ", count: width - index.count)
            let digits = String(repeating: "0", count: max(0, 16 - pc.count)) + pc
            let notes = (frame.isSignalFrame ? " <signal frame>" : "") + frame.reliabilityNote
            lines.append("  #\(index)\(padding)  0x\(digits) in \(frame.functionText) (\(frame.moduleText))\(notes)")
        }
        switch end {
        case .endOfStack: break
        case .depthLimit: lines.append("  -- \(end) (--depth N shows more)")
        default: lines.append("  -- \(end)")
        }
        return lines.joined(separator: "\n")
    }

    public var json: JSONValue {
        .object([
            ("tid", .int(Int64(thread.tid))), ("name", .string(thread.name)),
            ("frames", .array(frames.map(\.json))),
            ("end", .string(end.kind)), ("end_detail", .string(end.description)),
        ])
    }
}
