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

/// Stops `target` for a consistent read. When a thread does not stop in time (it sleeps
/// uninterruptibly), every thread is let go, one warning line names the thread and its
/// state, and the read goes on without stopping: a read does not need the stop.
func stopForRead(_ target: Target) throws {
    do { try target.stop() } catch .attachTimeout(let pid, let tid, let state) {
        printError(
            "vmio-ptrace: warning: thread \(tid) of pid \(pid) did not stop within the attach timeout (state \(state)); reading without stopping"
        )
    }
}

/// The bytes `write` writes and `search` looks for: hex, a string, or one typed value.
struct PayloadOptions: ParsableArguments {
    @Option(help: "Bytes as hex: 'de ad be ef' or 'deadbeef' (search also takes ?? wildcards: 'de ad ?? ef').")
    var hex: String?

    @Option(help: "A UTF-8 string.")
    var string: String?

    @Option(help: "A string encoded as UTF-16LE.")
    var utf16: String?

    @OptionGroup var values: TypedValueOptions

    /// The spec, with `write`'s extra sources.
    func spec(file: String? = nil, nul: Bool = false) -> PayloadSpec {
        var spec = PayloadSpec()
        spec.hex = hex
        spec.string = string
        spec.utf16 = utf16
        spec.file = file
        spec.nul = nul
        spec.typed = values.all.first
        return spec
    }

    /// Exactly one source of bytes; `sources` names them for the message.
    func validateOne(file: String? = nil, sources: String) throws {
        guard spec(file: file).sourceCount == 1, values.all.count <= 1 else {
            throw ValidationError("give exactly one of \(sources)")
        }
    }
}

/// The typed-value options `write` and `search` share (`--u8` … `--f64`). Each takes the
/// next word whatever it looks like, so `--i32 -5` is the value -5, not an option.
struct TypedValueOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "An unsigned 8-bit value (decimal or 0x hex).") var u8: String?
    @Option(parsing: .unconditional, help: "An unsigned 16-bit value.") var u16: String?
    @Option(parsing: .unconditional, help: "An unsigned 32-bit value.") var u32: String?
    @Option(parsing: .unconditional, help: "An unsigned 64-bit value.") var u64: String?
    @Option(parsing: .unconditional, help: "A signed 8-bit value.") var i8: String?
    @Option(parsing: .unconditional, help: "A signed 16-bit value.") var i16: String?
    @Option(parsing: .unconditional, help: "A signed 32-bit value.") var i32: String?
    @Option(parsing: .unconditional, help: "A signed 64-bit value.") var i64: String?
    @Option(parsing: .unconditional, help: "A 32-bit float.") var f32: String?
    @Option(parsing: .unconditional, help: "A 64-bit float.") var f64: String?

    /// The one typed value given, if any (validation counts them).
    var all: [(ValueFormat, String)] {
        let given: [(ValueFormat, String?)] = [
            (.u8, u8), (.u16, u16), (.u32, u32), (.u64, u64), (.i8, i8),
            (.i16, i16), (.i32, i32), (.i64, i64), (.f32, f32), (.f64, f64),
        ]
        return given.compactMap { format, text in text.map { (format, $0) } }
    }
}
