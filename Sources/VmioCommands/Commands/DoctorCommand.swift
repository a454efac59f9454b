import ArgumentParser
import VmIO
import VmioPtrace

/// `doctor`: why an operation on a process would be refused, and the one fix.
public struct DoctorCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Say why an operation on a process would be refused, and the one fix.",
        discussion: """
            Checks, one line each (ok, problem, or skipped when it could not be made): hidepid on \
            /proc, the target (owner, state, zombie), the caller's uid and CAP_SYS_PTRACE, \
            kernel.yama.ptrace_scope (0 classic, 1 ancestors only, 2 CAP_SYS_PTRACE only, 3 nobody \
            until the next reboot), whether the target is dumpable, another tracer (TracerPid), \
            whether its maps can be read, the caller's seccomp mode, a 1-byte probe of \
            process_vm_readv and of /proc/PID/mem (nothing is written), whether \
            /proc/PID/mem may be written (proc_mem.force_override), the target's pid namespace \
            (NSpid) and its ABI (from the ELF header of /proc/PID/exe). Then the one fix that \
            would make --for OPERATION work. The same checks run before any permission error is \
            reported, which names the failing check and its fix. Exit status 0 when nothing \
            found prevents the operation, 3 when something does, 4 when there is no such process \
            (or it is a zombie). --json prints {pid, operation, ok, fix, nspid, abi, state, \
            tracer_pid, checks: [{name, status, detail, fix, blocks}]}.
            """
    )

    @Option(
        name: .customLong("for"),
        help: "The operation to judge: read, write, stop (attach), or force-write (write --force).")
    public var operation: DoctorOperation = .stop

    public init() {}

    /// Examines the context's process; nothing attaches.
    public func run(in context: CommandContext) throws -> Outcome {
        guard let pid = context.pid else { throw CommandError.usage("doctor needs a pid") }
        let report = Doctor.examine(pid: pid, for: operation)
        var o = Outcome()
        o.status = report.ok ? .ok : report.targetGone ? .targetGone : .permission
        o.json = [
            ("pid", .int(Int64(report.pid))), ("operation", .string(operation.rawValue)),
            ("ok", .bool(report.ok)), ("fix", report.fix.map { .string($0) } ?? .null),
            ("nspid", .array(report.nspid.map { .int(Int64($0)) })), ("abi", report.abi?.json ?? .null),
            (
                "state",
                .object([("kind", .string(report.state.kind.rawValue)), ("state", .string(report.state.state))])
            ),
            ("tracer_pid", .int(Int64(report.state.tracerPid))), ("status", .int(Int64(o.status.rawValue))),
            ("checks", .array(report.checks.map(\.json))),
        ]
        o.text = ["pid \(report.pid): can this tool \(operation.phrase)?"]
        let width = report.checks.map(\.name.count).max() ?? 0
        for check in report.checks {
            let label = check.status.rawValue + String(repeating: " ", count: 7 - check.status.rawValue.count)
            let padding = String(repeating: " ", count: width - check.name.count)
            o.text.append("\(label)  \(check.name)\(padding)  \(check.detail)")
        }
        if let blocking = report.blocking {
            o.text.append("fix: \(blocking.fix ?? "none known") (\(blocking.name))")
        } else {
            o.text.append("fix: nothing to fix: this tool can \(operation.phrase)")
        }
        return o
    }
}

extension DoctorCheck {
    /// `{name, status, detail, fix, blocks}`.
    var json: JSONValue {
        .object([
            ("name", .string(name)), ("status", .string(status.rawValue)), ("detail", .string(detail)),
            ("fix", fix.map { .string($0) } ?? .null),
            ("blocks", .array(DoctorOperation.allCases.filter(blocks.contains).map { .string($0.rawValue) })),
        ])
    }
}
