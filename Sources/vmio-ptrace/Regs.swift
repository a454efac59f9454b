import ArgumentParser
import Glibc
import VmIO
import VmioPtrace
import VmioScript

struct Regs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the general registers of each thread of a process.",
        discussion: """
            Each thread is stopped on its own (PTRACE_SEIZE + PTRACE_INTERRUPT) while its \
            registers are read with PTRACE_GETREGS, then let go; the others run on. Shows rip, \
            rsp, rbp, rax…r15, eflags, the segment registers, fs_base, gs_base and orig_rax, \
            with the symbol and module rip is in. --json prints {pid, threads: [{tid, name, \
            registers: {rip, rsp, …} (each a 0x hex string), rip_symbol, rip_module}]}.
            """
    )

    @Argument(help: "The target's pid.")
    var pid: PID

    @Option(help: "Only this thread (a thread id of the process).")
    var thread: Int32?

    @OptionGroup var attach: AttachOptions

    @OptionGroup var options: TargetOptions

    func run() throws {
        try runReporting(json: options.json) {
            guard pid.value != getpid() else { throw BadInput("vmio-ptrace cannot trace its own threads; give another pid") }
            let target = try Target(pid: pid.value)
            let threads = try selectThreads(of: target, thread)
            attach.apply(to: target)
            var results: [(ThreadInfo, Registers)] = []
            for info in threads {
                do {
                    let registers = try target.withThreadStopped(info.tid) {
                        try Registers.read(pid: target.pid, tid: info.tid)
                    }
                    results.append((info, registers))
                } catch is NoSuchThread where thread == nil {
                    continue  // the thread exited after it was listed
                } catch TargetError.noSuchProcess {
                    throw targetGone("pid \(pid) exited while its registers were read (thread \(info.tid))",
                                     json: options.json)
                }
            }
            if options.json {
                print(JSONValue.object([
                    ("pid", .int(Int64(pid.value))),
                    ("threads", .array(results.map { info, registers in
                        let symbol = target.symbols.symbolize(registers.rip)
                        return .object([
                            ("tid", .int(Int64(info.tid))), ("name", .string(info.name)),
                            ("registers", .object(registers.named.map { ($0.name, .string($0.value.hex)) })),
                            ("rip_symbol", symbol.map { .string($0.description) } ?? .null),
                            ("rip_module", target.view.translate(registers.rip).map { .string($0.mapping.path) } ?? .null),
                        ])
                    })),
                ]).rendered)
            } else {
                for (i, (info, registers)) in results.enumerated() {
                    if i > 0 { print("") }
                    print("thread \(info.tid) (\(info.name)):")
                    for (name, value) in registers.named {
                        let hex = String(value, radix: 16)
                        var line = "  \(name.padding(8))0x\(String(repeating: "0", count: max(0, 16 - hex.count)))\(hex)"
                        if name == "rip" {
                            let symbol = target.symbols.symbolize(value)?.description ?? "??"
                            let module = target.view.translate(value).map { $0.mapping.path } ?? "?"
                            line += "  \(symbol) (\(module))"
                        }
                        print(line)
                    }
                }
            }
            return .ok
        }
    }
}

extension String {
    /// The string padded with spaces on the right to at least `width` characters.
    fileprivate func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
