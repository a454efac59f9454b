import ArgumentParser
import Glibc
import VmIO
import VmioPtrace
import VmioScript

/// The documented exit statuses.
enum ExitStatus: Int32 {
    case ok = 0
    case badInput = 1
    case partialCopy = 2
    case permission = 3
    case targetGone = 4
    case usage = 64
}

/// Bad input found at run time, with the message to print.
struct BadInput: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// A command's failure already printed, carrying its exit status.
struct Failed: Error {
    let status: ExitStatus
}

/// The exit status and the one-line message for an error.
func classify(_ error: any Error) -> (ExitStatus, String) {
    switch error {
    case let e as TargetError:
        switch e {
        case .noSuchProcess: return (.targetGone, e.description)
        case .permissionDenied, .alreadyTraced: return (.permission, e.description)
        case .model(let m): return classify(m)
        case .attachTimeout, .system: return (.badInput, e.description)
        }
    case let e as VmIoError:
        if case .partialCopy(let p) = e { return classify(p) }
        return (.badInput, e.description)
    case let p as PartialCopy:
        switch p.kind {
        case .targetGone: return (.targetGone, p.description)
        case .permission: return (.permission, p.description)
        default: return (.partialCopy, p.description)
        }
    case let e as BadInput: return (.badInput, e.description)
    case let e as DumpError: return (.badInput, e.description)
    default: return (.badInput, "\(error)")
    }
}

/// Writes a line to standard error.
func printError(_ line: String, newline: Bool = true) {
    var text = line + (newline ? "\n" : "")
    text.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
}

/// Runs a command body: on error prints one line on stderr (and, with `json`, a JSON
/// error object on stdout) and exits with the documented status.
func runReporting(json: Bool, _ body: () throws -> ExitStatus) throws {
    let status: ExitStatus
    do {
        status = try body()
    } catch let failed as Failed {
        status = failed.status
    } catch {
        let (code, message) = classify(error)
        printError("vmio-ptrace: " + message)
        if json {
            print(JSONValue.object([
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
    static var defaultCompletionKind: CompletionKind { .default }
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

/// The partial-copy line a command prints when a transfer stopped early.
func describe(_ report: TransferReport, verb: String) -> String {
    var line = "\(verb): \(report.moved) of \(report.requested) bytes moved"
    if let stop = report.stop {
        line += stop.faultAddress.map { "; first faulting address \($0.hex)" } ?? "; stopped: \(stop.kind)"
        if stop.side == .destination { line += " (in the destination)" }
    }
    if !report.holes.isEmpty {
        let total = report.holes.reduce(0) { $0 + $1.length }
        line += "; \(report.holes.count) hole\(report.holes.count == 1 ? "" : "s") skipped (\(total) bytes)"
    }
    return line
}

extension TransferReport {
    var json: [(String, JSONValue)] {
        [
            ("requested", .uint(requested)),
            ("moved", .uint(moved)),
            ("complete", .bool(isComplete)),
            ("holes", .array(holes.map { hole in
                .object([
                    ("address", .string(hole.address.hex)), ("length", .uint(hole.length)),
                    ("reason", .string(hole.kind.description)),
                ])
            })),
            ("stop", stop.map { stop in
                .object([
                    ("reason", .string(stop.kind.description)),
                    ("fault_address", stop.faultAddress.map { .string($0.hex) } ?? .null),
                    ("side", .string(stop.side.rawValue)),
                ])
            } ?? .null),
        ]
    }

    /// The exit status for a finished transfer: 0 only when every byte moved.
    var status: ExitStatus {
        if let stop { return classify(stop).0 }
        return isComplete ? .ok : .partialCopy
    }
}
