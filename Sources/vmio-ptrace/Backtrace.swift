import ArgumentParser
import VmIO
import VmioCommands
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

    @Option(
        help:
            "How libunwind reads the target: cached (whole pages through process_vm_readv, kept in a 16-page cache) or peekdata (libunwind's own PTRACE_PEEKDATA a word; slower)."
    )
    var memory: UnwindMemoryAccess = .cached

    @OptionGroup var options: OutputOptions

    func validate() throws {
        guard depth > 0 else { throw ValidationError("--depth must be at least 1") }
    }

    func run() throws {
        try runReporting(json: options.json) {
            let target = try Target(pid: pid.value)
            attach.apply(to: target)
            defer { target.resume() }
            return emit(
                try Operations.backtrace(target, thread: thread, snapshot: snapshot, depth: depth, memory: memory),
                json: options.json)
        }
    }
}
