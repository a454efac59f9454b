import ArgumentParser
import VmIO
import VmioPtrace

/// What a watchpoint fires on (`--write`, `--access`).
public enum WatchMode: String, EnumerableFlag, Sendable {
    case write, access

    public static func help(for value: WatchMode) -> ArgumentHelp? {
        switch value {
        case .write: "Fire on writes (the default)."
        case .access: "Fire on reads and writes."
        }
    }
}

/// `watch ADDR [LEN]`: a hardware watchpoint, each hit one line.
public struct WatchCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Log every write (or access) to memory of a process, with a hardware watchpoint.",
        discussion: """
            Sets the debug registers DR0-DR3 of every thread (and of threads created later) on \
            LEN bytes at ADDR (default 8; up to 32, in aligned pieces of 1, 2, 4 or 8 bytes, one \
            register each; more is an error), lets the target run, and prints one line a hit: \
            the time (UTC), the thread, the pc (the instruction after the access) as \
            FUNCTION+0xOFF (MODULE+0xOFF), and the value before and after (at the previous \
            hit) in --format. Signals the target receives are delivered to it. Ends after \
            --count hits, at --timeout, on SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGPIPE (after \
            cleaning up, the tool dies of the signal), or when the target exits (status 4) or \
            runs exec. Before the target is let go, DR7 is cleared on every thread and read \
            back 0; the summary on stderr says so. --json prints one object a hit {event, \
            time, id, tid, pc, function, location, address, old, new} and a last one {event: \
            end, reason, hits, exit, bytes_restored, threads_cleared, verified, problems}.
            """
    )

    @Argument(help: "The address to watch: 0x…, decimal, [heap]+OFF, FILE+OFF, sym:NAME.")
    public var address: AddressExpression

    @Argument(help: "How many bytes (1 to 32; default 8).")
    public var length: Length?

    @Flag public var mode: WatchMode = .write

    @Option(help: "How values are shown: u8…u64, i8…i64, x8…x64, f32, f64, ptr, hex (default: by LEN).")
    public var format: ValueFormat?

    @OptionGroup public var log: TrapLogOptions

    public init() {}

    public func validate() throws {
        let length = self.length?.value ?? 8
        guard length >= 1 && length <= 32 else {
            throw ValidationError("LEN must be 1 to 32 bytes (four debug registers of at most 8 bytes)")
        }
        if let format, format == .raw || format == .str {
            throw ValidationError("--format \(format.rawValue) does not show a watched value; use hex")
        }
        // ptr's width is the target's: checked once it is known.
        if let format, format != .ptr, let problem = Self.misfit(format, width: format.width, length: Int(length)) {
            throw ValidationError(problem)
        }
    }

    /// Why `format`'s values of `width` bytes cannot show `length` watched bytes, if they cannot.
    static func misfit(_ format: ValueFormat, width: Int?, length: Int) -> String? {
        guard let width, length % width != 0 else { return nil }
        return "--format \(format.rawValue) shows \(width)-byte values: LEN \(length) is not a multiple of \(width)"
    }

    public func run(in context: CommandContext) throws -> Outcome {
        let length = Int(self.length?.value ?? 8)
        let shown = format ?? [1: .u8, 2: .u16, 4: .u32, 8: .u64][length] ?? .hex
        return try context.withTarget(attach: log.attach) { target in
            if format == .ptr, let problem = Self.misfit(.ptr, width: shown.width(for: target.abi), length: length) {
                throw CommandError.usage(problem)
            }
            let start = try target.resolve(address)
            let show = { (bytes: [UInt8]?) -> JSONValue in
                guard let bytes else { return .null }
                if shown == .hex || bytes.count % (shown.width(for: target.abi) ?? 1) != 0 {
                    return .string(bytes.map { String(format2: $0) }.joined(separator: " "))
                }
                let values = shown.decode(bytes, abi: target.abi)
                return values.count == 1 ? values[0] : .array(values)
            }
            let log = TrapLog(context: context, options: self.log) { event, parts in
                let old = show(event.old), new = show(event.new)
                return (
                    parts.contains(.text) ? "\(valueText(old)) → \(valueText(new))" : "",
                    parts.contains(.json) ? [("address", .string(start.hex)), ("old", old), ("new", new)] : []
                )
            }
            return try log.run(target, verb: "watch") { session in
                [try session.addWatchpoint(at: start, length: length, access: mode == .access ? .access : .write)]
            }
        }
    }
}

/// A value's words: a number, a string, `[1, 2]`.
func valueText(_ value: JSONValue) -> String {
    switch value {
    case .array(let values): "[" + values.map(ValueFormat.text).joined(separator: ", ") + "]"
    default: ValueFormat.text(value)
    }
}

extension String {
    /// Two lowercase hex digits.
    init(format2 byte: UInt8) {
        self = (byte < 16 ? "0" : "") + String(byte, radix: 16)
    }
}
