import VmIO
import VmioCommands
import VmioPtrace

extension Operations {
    /// The threads a command works on: all of them, or the one `thread` names (bad input
    /// when the process has no such thread).
    static func selectThreads(of target: Target, _ tid: Int32?) throws -> [ThreadInfo] {
        let all = try target.threadInfos()
        guard let tid else { return all }
        guard let one = all.first(where: { $0.tid == tid }) else {
            throw CommandError.badInput("pid \(target.pid) has no thread \(tid) (\(describeThreads(all.map(\.tid))))")
        }
        return [one]
    }

    /// `its 3 threads: 10 11 12`, or for many `its 1021 threads: 10 11 12 13 14 … 1030` (a few
    /// of them, and how many: a list of a thousand ids helps nobody).
    static func describeThreads(_ tids: [Int32]) -> String {
        let count = "its \(tids.count) thread\(tids.count == 1 ? "" : "s")"
        guard tids.count > 8 else { return "\(count): \(tids.map(String.init).joined(separator: " "))" }
        return "\(count): \(tids.prefix(5).map(String.init).joined(separator: " ")) … \(tids.last!)"
    }

    /// `backtrace`: each thread stopped on its own while unwound (all first with `snapshot`).
    public static func backtrace(
        _ target: Target, thread: Int32?, snapshot: Bool, depth: Int, memory: UnwindMemoryAccess
    ) throws -> Outcome {
        guard target.pid != ProcFS.ownPID else {
            throw CommandError.badInput("vmio-ptrace cannot trace its own threads; give another pid")
        }
        let threads = try selectThreads(of: target, thread)
        let wasStopped = target.isStopped
        if snapshot { try target.stop() }
        defer { if snapshot && !wasStopped { target.resume() } }
        let unwinder = try Unwinder(pid: target.pid, access: memory)
        // Threads stopped one at a time: the run state is checked once, after the last.
        defer { target.finishThreadStops() }
        var traces: [ThreadBacktrace] = []
        for info in threads {
            do throws(TargetError) {
                let (frames, end) = try target.withThreadStopped(info.tid) { () throws(TargetError) in
                    try unwinder.unwind(tid: info.tid, maxDepth: depth, view: target.view, symbols: target.symbols)
                }
                traces.append(ThreadBacktrace(thread: info, frames: frames, end: end))
            } catch {
                switch error {
                case .noSuchThread where thread == nil: continue  // the thread exited after it was listed
                case .noSuchProcess:
                    throw CommandError.targetGone(
                        "pid \(target.pid) exited during the backtrace (while unwinding thread \(info.tid))")
                default: throw error
                }
            }
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

    /// `regs`: each thread stopped on its own while its registers are read.
    public static func regs(_ target: Target, thread: Int32?) throws -> Outcome {
        guard target.pid != ProcFS.ownPID else {
            throw CommandError.badInput("vmio-ptrace cannot trace its own threads; give another pid")
        }
        let threads = try selectThreads(of: target, thread)
        var results: [(ThreadInfo, Registers)] = []
        defer { target.finishThreadStops() }
        for info in threads {
            do throws(TargetError) {
                let registers = try target.withThreadStopped(info.tid) { () throws(TargetError) in
                    try Registers.read(pid: target.pid, tid: info.tid)
                }
                results.append((info, registers))
            } catch {
                switch error {
                case .noSuchThread where thread == nil: continue  // the thread exited after it was listed
                case .noSuchProcess:
                    throw CommandError.targetGone(
                        "pid \(target.pid) exited while its registers were read (thread \(info.tid))")
                default: throw error
                }
            }
        }
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
                                target.view.translate(registers.rip).map { .string($0.mapping.path) } ?? .null
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
                    let module = target.view.translate(value).map { $0.mapping.path } ?? "?"
                    line += "  \(symbol) (\(module))"
                }
                if name == "orig_rax", let call = SystemCall.name(value, abi: target.abi) {
                    line += "  (\(call))"
                }
                o.text.append(line)
            }
        }
        o.value = results.first.map { .int(Int128($0.1.rip)) }
        return o
    }
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
