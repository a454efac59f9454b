import VmIO
import VmioPtrace

/// What `wait`, `step` and `finish` give back: one event as a line, as JSON fields, and as a
/// record whose fields a session reads with `$hit.field` (README.md, "Sessions").
enum TrapEventValue {
    /// The event's outcome on `target`: text, JSON, the record as the value.
    static func outcome(_ event: TrapEvent, on target: Target) -> Outcome {
        let place = event.pc == 0 ? nil : target.symbols.describe(event.pc)
        var fields: [(String, Value)] = [
            ("kind", .string(event.kind.rawValue)), ("id", .int(Int128(event.trap?.id ?? 0))),
            ("tid", .int(Int128(event.tid))), ("thread", .int(Int128(event.tid))), ("pc", .int(Int128(event.pc))),
            ("address", .int(Int128(event.trap?.address ?? 0))),
        ]
        var json: [(String, JSONValue)] = [
            ("event", .string(event.kind.rawValue)), ("id", event.trap.map { .int(Int64($0.id)) } ?? .null),
            ("tid", .int(Int64(event.tid))), ("pc", .string(event.pc.hex)),
            ("function", place.map { .string($0.functionText) } ?? .null),
            ("location", place.map { .string($0.locationText) } ?? .null),
            ("address", event.trap.map { .string($0.address.hex) } ?? .null),
        ]
        var words = ["\(event.kind.rawValue)"]
        if let trap = event.trap { words.append("#\(trap.id)") }
        if event.tid != 0 { words.append("tid \(event.tid)") }
        if let place { words.append("pc \(event.pc.hex) \(place.functionText) (\(place.locationText))") }
        if let new = event.new {
            let old = event.old.map(value) ?? .bytes([])
            fields += [("old", old), ("new", value(new)), ("value", value(new))]
            json += [("old", old.json), ("new", value(new).json)]
            words.append("\(old) → \(value(new))")
        }
        if let signal = event.signal {
            let name = ProcessEnd.signalName(signal)
            fields.append(("signal", .string(name)))
            json.append(("signal", .string(name)))
            words.append(name)
        }
        if let end = event.end {
            if case .exited(let code) = end { fields.append(("status", .int(Int128(code)))) }
            json.append(("exit", .string(end.description)))
            words.append("pid \(target.pid) \(end)")
        }
        if let registers = event.registers {
            fields += registers.named.map { ($0.name, .int(Int128($0.value))) }
            let arguments = BreakCommand.arguments.map { ($0, registers[$0] ?? 0) }
            json.append(("arguments", .object(arguments.map { ($0.0, .string($0.1.hex)) })))
            if event.kind == .breakpoint { words += arguments.map { "\($0.0)=\($0.1.hex)" } }
        }
        let line = words.joined(separator: " ")
        var o = Outcome()
        o.text = [line]
        o.json = json
        o.value = .record(Record(fields, summary: line))
        return o
    }

    /// Watched bytes as a session value: an unsigned little-endian integer up to 8 bytes,
    /// else the bytes.
    static func value(_ bytes: [UInt8]) -> Value {
        guard !bytes.isEmpty, bytes.count <= 8 else { return .bytes(bytes) }
        return .int(Int128(bytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }))
    }
}
