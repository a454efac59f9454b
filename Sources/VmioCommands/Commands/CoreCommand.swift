import ArgumentParser
import VmIO
import VmioPtrace

/// `core -o FILE`: an ELF core file of a live process, for gdb, lldb and eu-stack.
public struct CoreCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "core",
        abstract: "Write an ELF core file of a live process (gdb, lldb and eu-stack open it).",
        discussion: """
            The core holds every thread's registers (NT_PRSTATUS, NT_FPREGSET, NT_X86_XSTATE, \
            NT_SIGINFO), the process (NT_PRPSINFO), its auxiliary vector and its mapped files \
            (NT_FILE), and one PT_LOAD a mapping, in the target's ELF class. Which mappings carry \
            their contents follows /proc/PID/coredump_filter (or --filter), as the kernel's own \
            cores do; MADV_DONTDUMP mappings and [vvar] stay empty. Every thread is stopped while \
            registers and memory are taken, and let go afterwards. The file is written under a \
            temporary name and renamed when complete: an interrupted core, or one of a target \
            that exits, leaves nothing. Pages that cannot be read are zeros in the core, listed \
            as holes (exit status 2). --json prints {pid, output, class, machine, threads, \
            segments, segments_with_contents, memory_bytes, file_size, disk_bytes, filter, \
            sparse, holes, complete, stopped}.
            """
    )

    @Option(
        name: [.customShort("o"), .customLong("output")],
        help: ArgumentHelp("The core file to write.", valueName: "file"), transform: nonEmptyPath)
    public var output: String

    @Flag(
        name: .customLong("no-stop"),
        help: """
            Do not stop the process: its memory is read while it runs (a best-effort snapshot), \
            each thread stopped alone only for its registers.
            """)
    public var noStop = false

    @Option(
        name: .customLong("filter"),
        help: ArgumentHelp(
            "Which mappings carry their contents, instead of /proc/PID/coredump_filter (0x33 by default).",
            discussion: """
                Bits as in core(5): 0x1 anonymous private, 0x2 anonymous shared, 0x4 file private, \
                0x8 file shared, 0x10 ELF headers, 0x20 hugetlb private, 0x40 hugetlb shared.
                """,
            valueName: "mask"))
    public var filter: CoreFilterMask?

    @Flag(help: "Leave all-zero pages as holes of the file (no disk blocks) instead of writing zeros.")
    public var sparse = false

    @Flag(help: "Replace an existing file.") public var force = false

    @OptionGroup public var attach: AttachOptions

    public init() {}

    public func run(in context: CommandContext) throws -> Outcome {
        // Registers are taken in ptrace stops, which this process cannot put itself in.
        guard context.pid != ProcFS.ownPID else {
            throw CommandError.badInput("vmio-ptrace cannot trace its own threads; give another pid")
        }
        return try context.withTarget(stop: noStop ? .running : .consistent, attach: attach) { target in
            // The context stops the target (or warns that it could not and goes on without).
            let options = CoreOptions(filter: filter?.value, sparse: sparse, replace: force, stop: false)
            var line: ProgressLine?
            defer { line?.finish() }
            let report = try target.writeCore(to: output, options: options) { done, total in
                if line == nil { line = ProgressLine("core", total: total, enabled: context.showsProgress) }
                line?.update(done)
            }
            line?.finish()
            line = nil
            return outcome(report)
        }
    }

    private func outcome(_ report: CoreReport) -> Outcome {
        let carried = report.segments.filter { $0.fileSize > 0 }.count
        var o = Outcome()
        o.json = [
            ("pid", .int(Int64(report.pid))), ("output", .string(report.path)),
            ("class", .string("ELF\(report.format.wordSize * 8)")),
            (
                "machine",
                .string(
                    TargetABI(
                        pointerWidth: report.format.wordSize, byteOrder: report.format.byteOrder,
                        machine: report.format.machine, source: .elfHeader
                    ).machineName)
            ),
            ("threads", .array(report.threads.map { .int(Int64($0)) })),
            ("segments", .uint(UInt64(report.segments.count))), ("segments_with_contents", .uint(UInt64(carried))),
            ("memory_bytes", .uint(report.memoryBytes)), ("file_size", .uint(report.fileSize)),
            ("disk_bytes", .uint(report.diskBytes)), ("filter", .string(UInt64(report.filter.rawValue).hex)),
            ("sparse", .bool(sparse)), ("holes", .array(report.holes.map(\.json))),
            ("complete", .bool(report.isComplete)), ("stopped", .bool(report.stopped)),
        ]
        o.text =
            [
                "wrote \(report.path): \(counted(report.threads.count, "thread")), "
                    + "\(counted(report.segments.count, "segment")) (\(carried) with contents), "
                    + "\(counted(report.memoryBytes, "byte")) of memory, "
                    + "\(report.fileSize) bytes long, \(report.diskBytes) on disk"
            ] + report.holes.map { "hole: \($0.length) bytes at \($0.address.hex) (\($0.kind))" }
        o.value = .int(Int128(report.memoryBytes))
        if !report.isComplete {
            o.status = .partialCopy
            let bytes = report.holes.reduce(0) { $0 + $1.length }
            o.message =
                "core incomplete: \(counted(report.holes.count, "hole")), \(bytes) bytes could not be read "
                + "(zeros in the core)"
        }
        return o
    }
}

/// `--filter MASK`: `0x` hex or decimal, as `/proc/PID/coredump_filter` takes it; at most 0x1ff.
public struct CoreFilterMask: ExpressibleByArgument, Sendable {
    public let value: CoredumpFilter

    public init?(argument: String) {
        guard let bits = parseNumber(argument[...]), bits <= 0x1ff else { return nil }
        value = CoredumpFilter(rawValue: UInt32(bits))
    }
}

extension Hole {
    /// `{address, length, reason, errno, mechanism}`.
    var json: JSONValue {
        .object([
            ("address", .string(address.hex)), ("length", .uint(length)), ("reason", .string(kind.description)),
            ("errno", errno.map { .int(Int64($0)) } ?? .null),
            ("mechanism", mechanism.map { .string($0.rawValue) } ?? .null),
        ])
    }
}
