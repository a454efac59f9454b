import ArgumentParser
import VmIO
import VmioCommands
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

    @OptionGroup var options: OutputOptions

    func run() throws {
        try runReporting(json: options.json) {
            let target = try Target(pid: pid.value)
            attach.apply(to: target)
            return emit(try Operations.regs(target, thread: thread), json: options.json)
        }
    }
}
