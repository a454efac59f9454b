import VmIO
import VmioPtrace

/// The documented exit statuses, shared by the CLI and sessions.
public enum ExitStatus: Int32, Sendable {
    case ok = 0
    case badInput = 1
    case partialCopy = 2
    case permission = 3
    case targetGone = 4
    case usage = 64
}

/// Bad input found at run time, with the message to print.
public struct BadInput: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ message: String) { description = message }
}

/// The exit status and the one-line message for an error.
public func classify(_ error: any Error) -> (ExitStatus, String) {
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
    case let e as ScriptError: return (e.status, e.description)
    case let e as TargetGone: return (.targetGone, e.description)
    default: return (.badInput, "\(error)")
    }
}

/// The status of a finished transfer: 0 only when every byte moved — or, with
/// `bestEffort`, when the transfer ran to its end, holes and all.
public func status(of report: TransferReport, bestEffort: Bool = false) -> ExitStatus {
    if let stop = report.stop { return classify(stop).0 }
    if bestEffort { return .ok }
    return report.isComplete ? .ok : .partialCopy
}

/// The line printed when a transfer stopped early or skipped holes.
public func describe(_ report: TransferReport, verb: String) -> String {
    var line = "\(verb): \(report.moved) of \(report.requested) bytes moved"
    if let stop = report.stop {
        line += stop.faultAddress.map { "; first faulting address \($0.hex)" } ?? "; stopped: \(stop.kind)"
        if stop.side == .destination { line += " (in the destination)" }
    }
    if !report.holes.isEmpty {
        let total = report.holes.reduce(0) { $0 + $1.length }
        line += "; \(report.holes.count) hole\(report.holes.count == 1 ? "" : "s") skipped (\(total) bytes)"
        if verb == "best effort" { line += ", filled with zeros" }
    }
    // Say so when anything came another way than process_vm_readv (the read ladder).
    // (A read of at most ReadLadder.smallReadLimit bytes takes pread first by design.)
    let mechanisms = report.ranges.map(\.mechanism).uniqued()
    let smallRead =
        report.requested <= UInt64(ReadLadder.smallReadLimit) && mechanisms == [AccessMechanism.pread.rawValue]
    if !mechanisms.isEmpty, mechanisms != [AccessMechanism.processVMReadv.rawValue], !smallRead {
        line += "; read through \(mechanisms.joined(separator: ", "))"
    }
    return line
}

extension Array where Element: Hashable {
    /// The elements in order, each once.
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}

extension TargetABI {
    /// `{pointer_width, byte_order, machine, class, source}` for `--json`.
    public var json: JSONValue {
        .object([
            ("pointer_width", .int(Int64(pointerWidth))), ("byte_order", .string(byteOrder.rawValue)),
            ("machine", .string(machineName)), ("class", .string("ELF\(pointerWidth * 8)")),
            ("source", .string(source.rawValue)),
        ])
    }
}

extension TransferReport {
    /// The report's fields for `--json` output.
    public var jsonFields: [(String, JSONValue)] {
        [
            ("requested", .uint(requested)),
            ("moved", .uint(moved)),
            ("complete", .bool(isComplete)),
            (
                "holes",
                .array(
                    holes.map { hole in
                        .object([
                            ("address", .string(hole.address.hex)), ("length", .uint(hole.length)),
                            ("reason", .string(hole.kind.description)),
                            ("errno", hole.errno.map { .int(Int64($0)) } ?? .null),
                            ("mechanism", hole.mechanism.map { .string($0) } ?? .null),
                        ])
                    })
            ),
            (
                "stop",
                stop.map { stop in
                    .object([
                        ("reason", .string(stop.kind.description)),
                        ("fault_address", stop.faultAddress.map { .string($0.hex) } ?? .null),
                        ("side", .string(stop.side.rawValue)),
                        ("errno", stopErrno.map { .int(Int64($0)) } ?? .null),
                        ("mechanism", stopMechanism.map { .string($0) } ?? .null),
                    ])
                } ?? .null
            ),
            // Which mechanism moved each range (process_vm_readv, pread, peekdata).
            (
                "ranges",
                .array(
                    ranges.map { r in
                        .object([
                            ("address", .string(r.address.hex)), ("length", .uint(r.length)),
                            ("mechanism", .string(r.mechanism)),
                        ])
                    })
            ),
            (
                "mechanism",
                ranges.first.map { first in
                    .string(ranges.allSatisfy { $0.mechanism == first.mechanism } ? first.mechanism : "mixed")
                } ?? .null
            ),
        ]
    }
}
