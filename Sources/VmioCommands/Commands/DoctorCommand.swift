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
            /proc, the target (owner, state, zombie, this tool itself), the caller's uid and CAP_SYS_PTRACE, \
            kernel.yama.ptrace_scope (0 classic, 1 ancestors only, 2 CAP_SYS_PTRACE only, 3 nobody \
            until the next reboot), whether the target is dumpable, another tracer (TracerPid), \
            whether its maps can be read, the caller's seccomp mode, a 1-byte probe of \
            process_vm_readv and of /proc/PID/mem (nothing is written), whether \
            /proc/PID/mem may be written (proc_mem.force_override), the target's pid namespace \
            (NSpid) and its ABI (from the ELF header of /proc/PID/exe). Then the one fix that \
            would make --for OPERATION work. When the target can be attached, it also looks for \
            what a killed watch or break (SIGKILL cannot be cleaned up after) may have left: code \
            bytes that differ from the mapped file (only executable file mappings smaps shows \
            private-dirty are compared) and DR7 enabling a debug register on any thread (each \
            thread stopped on its own, briefly); leftovers exit 1 unless --repair, which writes \
            the file's bytes back (verified) and clears DR0-DR3, DR6 and DR7. The same checks run before any \
            permission error is \
            reported, which names the failing check and its fix. Exit status 0 when nothing \
            found prevents the operation, 3 when something does, 4 when there is no such process \
            (or it is a zombie). --json prints {pid, operation, ok, fix, nspid, abi, state, \
            tracer_pid, checks: [{name, status, detail, fix, blocks}], leftovers: {text: [{address, \
            found, file, path}], threads: [{tid, dr7}], skipped, repaired}}.
            """
    )

    @Option(
        name: .customLong("for"),
        help: "The operation to judge: read, write, stop (attach), or force-write (write --force).")
    public var operation: DoctorOperation = .stop

    @Flag(help: "Remove what a killed watch or break left: code bytes put back from the file, DR7 cleared.")
    public var repair = false

    public init() {}

    /// Examines the context's process (nothing attaches for the checks), then looks for the
    /// leftovers of a killed watch or break, each thread stopped on its own, briefly.
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
        let stoppable = Doctor.examine(pid: pid, for: .stop).ok
        guard stoppable, pid != ProcFS.ownPID else {
            if repair { throw CommandError.badInput("--repair needs to attach to pid \(pid), which it cannot") }
            return o
        }
        // The leftovers' lines go with the checks, before the fix.
        let fixLine = o.text.removeLast()
        // The target line says already when the process is reached through another thread.
        let leftBehind = try context.withoutWarnings().withTarget(pid) { target in
            try leftovers(target, into: &o, width: width)
        }
        if leftBehind && report.ok {
            // Nothing else is in the way: the one fix is the repair.
            let fix = "vmio-ptrace doctor \(pid) --repair removes what a killed watch or break left"
            o.text.append("fix: \(fix) (leftovers)")
            o.json = o.json.map { $0.0 == "ok" ? ("ok", .bool(false)) : $0.0 == "fix" ? ("fix", .string(fix)) : $0 }
        } else {
            o.text.append(fixLine)
        }
        if let index = o.json.firstIndex(where: { $0.0 == "status" }) {
            o.json[index].1 = .int(Int64(o.status.rawValue))
        }
        return o
    }

    /// The leftovers of a killed watch or break: reported, or with --repair removed. True when
    /// some are left in the target (found, not repaired).
    private func leftovers(_ target: Target, into o: inout Outcome, width: Int) throws -> Bool {
        let name = "leftovers" + String(repeating: " ", count: max(0, width - "leftovers".count))
        let found = try target.trapLeftovers()
        for difference in found.text {
            o.text.append(
                "problem  \(name)  \(difference.address.hex): \(hexBytes(difference.found)) where \(difference.path) "
                    + "has \(hexBytes(difference.file))")
        }
        for thread in found.threads {
            o.text.append("problem  \(name)  thread \(thread.tid): DR7 \(thread.dr7.hex) enables a debug register")
        }
        for line in found.skipped { o.text.append("skipped  \(name)  \(line)") }
        var repaired: JSONValue = .null
        if found.isClean {
            o.text.append("ok       \(name)  code as in its files, DR7 zero on every thread")
        } else if repair {
            let done = target.repairTrapLeftovers(found)
            repaired = .object([
                ("bytes", .int(Int64(done.bytesRestored))), ("threads", .int(Int64(done.threadsCleared))),
                ("problems", .array(done.problems.map { .string($0) })),
            ])
            o.text.append(
                "repaired: \(counted(done.bytesRestored, "byte")) put back, DR7 cleared on "
                    + "\(counted(done.threadsCleared, "thread"))")
            if !done.problems.isEmpty {
                o.status = .badInput
                o.message = "repair of pid \(target.pid) incomplete: " + done.problems.joined(separator: "; ")
            }
        } else if o.status == .ok {
            o.status = .badInput
            o.message =
                "pid \(target.pid) has leftovers of a killed watch or break; "
                + "vmio-ptrace doctor \(target.pid) --repair removes them"
        }
        o.json.append(
            (
                "leftovers",
                .object([
                    (
                        "text",
                        .array(
                            found.text.map {
                                .object([
                                    ("address", .string($0.address.hex)), ("found", .string(hexBytes($0.found))),
                                    ("file", .string(hexBytes($0.file))), ("path", .string($0.path)),
                                ])
                            })
                    ),
                    (
                        "threads",
                        .array(
                            found.threads.map { .object([("tid", .int(Int64($0.tid))), ("dr7", .string($0.dr7.hex))]) })
                    ),
                    ("skipped", .array(found.skipped.map { .string($0) })), ("repaired", repaired),
                ])
            ))
        return !found.isClean && !repair
    }
}

/// Bytes as `cc 90`.
func hexBytes(_ bytes: [UInt8]) -> String {
    bytes.map { String(format2: $0) }.joined(separator: " ")
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
