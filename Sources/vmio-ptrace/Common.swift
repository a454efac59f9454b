import ArgumentParser
import Glibc
import VmIO
import VmioPtrace
import VmioScript

/// Writes a line to standard error.
func printError(_ line: String, newline: Bool = true) {
    var text = line + (newline ? "\n" : "")
    text.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
}

/// A command's failure already printed, carrying its exit status.
struct Failed: Error {
    let status: ExitStatus
}

/// Prints an outcome: its JSON object, or its text lines (and its message on stderr
/// when it failed). Returns its status.
func emit(_ outcome: Outcome, json: Bool) -> ExitStatus {
    if json {
        print(JSONValue.object(outcome.json).rendered)
    } else {
        for line in outcome.text { print(line) }
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
        let (code, message) = classify(error)
        printError("vmio-ptrace: " + message)
        if json {
            print(
                JSONValue.object([
                    ("error", .string(message)), ("status", .int(Int64(code.rawValue))),
                ]).rendered)
        }
        status = code
    }
    if status != .ok { throw ExitCode(status.rawValue) }
}

/// A pid on the command line: a positive number, or `self`.
struct PID: ExpressibleByArgument, CustomStringConvertible {
    let value: Int32
    init?(argument: String) {
        if argument == "self" {
            value = getpid()
        } else if let n = Int32(argument), n > 0 {
            value = n
        } else {
            return nil
        }
    }
    var description: String { String(value) }
    static var defaultCompletionKind: CompletionKind { .custom { _, _, prefix in pidCompletions(prefix: prefix) } }
}

/// `PID:ADDR` for copies (ADDR may itself hold colons, as in `sym:FILE:NAME`).
struct ProcessAddress: ExpressibleByArgument {
    let pid: PID
    let address: AddressExpression
    init?(argument: String) {
        guard let colon = argument.firstIndex(of: ":"), let pid = PID(argument: String(argument[..<colon])),
            let address = try? AddressExpression(parsing: String(argument[argument.index(after: colon)...]))
        else { return nil }
        self.pid = pid
        self.address = address
    }
}

extension AddressExpression: ExpressibleByArgument {
    public init?(argument: String) {
        try? self.init(parsing: argument)
    }
}

/// A length: decimal, `0x` hex, or with a `K`/`M`/`G` suffix.
struct Length: ExpressibleByArgument {
    let value: UInt64
    init?(argument: String) {
        guard let v = parseLength(argument) else { return nil }
        value = v
    }
}

/// A `--region` selector.
extension RegionSelector: ExpressibleByArgument {
    public init?(argument: String) {
        try? self.init(parsing: argument)
    }
}

/// Options every command that touches a target shares.
struct TargetOptions: ParsableArguments {
    @Flag(help: "Print one JSON object instead of text.")
    var json = false
}

/// `--attach-timeout`, on every command that can stop a target.
struct AttachOptions: ParsableArguments {
    @Option(
        name: .customLong("attach-timeout"),
        help: ArgumentHelp(
            "How long to wait for the threads to stop when attaching, in seconds.",
            discussion:
                "A thread that does not stop in time (uninterruptible sleep, D) is named with its state; reads go on without stopping, anything that needs the stop fails (status 1) with every thread let go.",
            valueName: "seconds"))
    var attachTimeout: Double = 5

    func validate() throws {
        guard attachTimeout > 0, attachTimeout <= 86_400 else {
            throw ValidationError("--attach-timeout must be more than 0 and at most 86400 seconds")
        }
    }

    var duration: Duration { .milliseconds(Int64((attachTimeout * 1000).rounded(.up))) }

    /// Sets the target's attach timeout.
    func apply(to target: Target) { target.attachTimeout = duration }
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
