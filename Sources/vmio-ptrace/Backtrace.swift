import ArgumentParser
import VmIO
import VmioCommands
import VmioPtrace
import VmioScript

struct Backtrace: ParsableCommand {
    static let configuration = CommandConfiguration(
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
            "How the unwinder reads the target: cached (whole pages through process_vm_readv, kept in a 16-page cache) or peekdata (one PTRACE_PEEKDATA a word; slower)."
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
