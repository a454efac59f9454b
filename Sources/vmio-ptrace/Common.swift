import ArgumentParser
import VmIO
import VmioCommands
import VmioPtrace

/// Writes a line to standard error.
func printError(_ line: String) {
    StandardError.line(line)
}

/// A command's failure already printed, carrying its exit status.
struct Failed: Error {
    let status: ExitStatus
}

/// Prints an outcome: its JSON object, or its text lines (and its message on stderr:
/// the failure, or a note). Returns its status.
func emit(_ outcome: Outcome, json: Bool) -> ExitStatus {
    if !outcome.printed {
        if json {
            if !outcome.json.isEmpty { print(JSONValue.object(outcome.json).rendered) }
        } else {
            for line in outcome.text { print(line) }
        }
    }
    if let message = outcome.message {
        printError(outcome.status == .ok ? message : "vmio-ptrace: " + message)
    }
    return outcome.status
}

/// Runs a command body: on error prints one line on stderr (and, with `json`, a JSON
/// error object on stdout) and exits with the documented status.
func runReporting(json: Bool, _ body: () throws -> ExitStatus) throws {
    Tracer.restoreWarning = { printError("vmio-ptrace: warning: " + $0) }
    let status: ExitStatus
    do {
        status = try body()
    } catch let failed as Failed {
        status = failed.status
    } catch {
        let failure = CommandError(error)
        printError("vmio-ptrace: " + failure.message)
        if json { print(failure.json.rendered) }
        status = failure.exitStatus
    }
    if status != .ok { throw ExitCode(status.rawValue) }
}

/// Runs a shared command on the command line: its output streams to standard output,
/// its targets are let go on every path.
func execute(_ command: some VmioCommand, pid: Int32?, json: Bool) throws {
    try runReporting(json: json) {
        let targets = TargetPool()
        defer { targets.resumeAll() }
        let context = CommandContext(
            pid: pid, targets: targets, streams: true, json: json, showsProgress: true,
            warn: { printError("vmio-ptrace: warning: " + $0) })
        return emit(try command.run(in: context), json: json)
    }
}

extension TargetOptions {
    /// Runs `command` on this target.
    func run(_ command: some VmioCommand) throws {
        try execute(command, pid: pid.value, json: output.json)
    }
}

extension AttachOptions {
    /// Sets the target's attach timeout, when one was given.
    func apply(to target: Target) {
        if let duration { target.attachTimeout = duration }
    }
}
