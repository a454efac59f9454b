import VmIO
import VmioPtrace

extension TransferReport {
    /// The status of a finished transfer: 0 only when every byte moved — or, with
    /// `bestEffort`, when the transfer ran to its end, holes and all.
    public func exitStatus(bestEffort: Bool = false) -> ExitStatus {
        if let stop { return stop.exitStatus }
        if bestEffort { return .ok }
        return isComplete ? .ok : .partialCopy
    }

    /// The line printed when a transfer stopped early or skipped holes: `VERB: K of N bytes
    /// moved`, where it stopped, the holes, and the mechanisms when any was not process_vm_readv.
    /// With the `pids` of a copy's two sides, a fault names its side and pid.
    public func summary(_ verb: String, pids: (source: Int32, destination: Int32)? = nil) -> String {
        var line = "\(verb): \(moved) of \(requested) bytes moved"
        if let stop {
            line += stop.faultAddress.map { "; first faulting address \($0.hex)" } ?? "; stopped: \(stop.kind)"
            if let pids {
                line +=
                    stop.side == .destination
                    ? " (in the destination, pid \(pids.destination))" : " (in the source, pid \(pids.source))"
            } else if stop.side == .destination {
                line += " (in the destination)"
            }
        }
        if !holes.isEmpty {
            let total = holes.reduce(0) { $0 + $1.length }
            line += "; \(holes.count) hole\(holes.count == 1 ? "" : "s") skipped (\(total) bytes)"
            if verb == "best effort" { line += ", filled with zeros" }
        }
        // Say so when anything came another way than process_vm_readv (the read ladder).
        // (A read of at most ProcessMemory.smallReadLimit bytes takes pread first by design.)
        let mechanisms = ranges.map(\.mechanism).uniqued()
        let smallRead = requested <= UInt64(ProcessMemory.smallReadLimit) && mechanisms == [.pread]
        if !mechanisms.isEmpty, mechanisms != [.processVMReadv], !smallRead {
            line += "; read through \(mechanisms.map(\.rawValue).joined(separator: ", "))"
        }
        return line
    }
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
                        Self.range(
                            hole.address, hole.length, ("reason", .string(hole.kind.description)),
                            ("errno", hole.errno.map { .int(Int64($0)) } ?? .null),
                            ("mechanism", hole.mechanism.map { .string($0.rawValue) } ?? .null))
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
                        ("mechanism", stopMechanism.map { .string($0.rawValue) } ?? .null),
                    ])
                } ?? .null
            ),
            // Which mechanism moved each range (process_vm_readv, pread, peekdata).
            (
                "ranges",
                .array(ranges.map { Self.range($0.address, $0.length, ("mechanism", .string($0.mechanism.rawValue))) })
            ),
            (
                "mechanism",
                ranges.first.map { first -> JSONValue in
                    let same = ranges.allSatisfy { $0.mechanism == first.mechanism }
                    return .string(same ? first.mechanism.rawValue : "mixed")
                } ?? .null
            ),
        ]
    }

    /// A range's object: its address and length, then `fields`.
    private static func range(_ address: Address, _ length: UInt64, _ fields: (String, JSONValue)...) -> JSONValue {
        .object([("address", .string(address.hex)), ("length", .uint(length))] + fields)
    }
}
