import ArgumentParser
import VmIO
import VmioPtrace

/// `write ADDR SOURCE`: bytes into a process.
public struct WriteCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "write",
        abstract: "Write memory of a process.",
        discussion: """
            Give exactly one source of bytes. The whole range must lie in mappings of the \
            target (nothing is written otherwise). A mapping the target cannot write (r-xp code, \
            r--p data) is refused unless --force, which writes through /proc/PID/mem. \
            --verify reads the range back through the write-to-read handover and compares; a \
            mismatch exits 2. --json prints {pid, address, requested, written, verified, mismatch}.
            """
    )

    @Argument(help: "Where to write: 0x…, decimal, [heap]+OFF, [stack], FILE+OFF, sym:NAME.")
    public var address: AddressExpression

    @OptionGroup public var payload: PayloadOptions

    @Flag(help: "Append a NUL to --string or --utf16.")
    public var nul = false

    @Option(help: "The contents of this file.", transform: nonEmptyPath)
    public var file: String?

    @Flag(help: "Write through /proc/PID/mem, which can patch mappings the target cannot write (code).")
    public var force = false

    @Flag(help: "Read the range back after writing and compare.")
    public var verify = false

    public static var positionalArguments: [PositionalArgument<Self>] { [.init(\.address)] }

    public init() {}

    public func validate() throws {
        try payload.validateOne(
            file: file, sources: "--hex, --string, --utf16, --file, --u8…--u64, --i8…--i64, --f32, --f64")
        if nul && payload.string == nil && payload.utf16 == nil {
            throw ValidationError("--nul goes with --string or --utf16")
        }
        try payload.validateHex(pattern: false)
    }

    public func run(in context: CommandContext) throws -> Outcome {
        let bytes = try payload.spec(file: file, nul: nul).bytes()
        return try context.withTarget(maps: .onDemand) { target in
            let start = try target.resolve(address)
            // An empty write still names an address in a mapping, as an empty read does.
            if bytes.isEmpty, try target.mapping(at: start) == nil {
                throw CommandError.badInput("address \(start.hex) is in no mapping of pid \(target.pid)")
            }
            let report = try target.write(bytes, at: start, force: force, verify: verify)
            let verified = report.verified && report.mismatch == nil
            var o = Outcome()
            o.json = [
                ("pid", .int(Int64(target.pid))), ("address", .string(start.hex)),
                ("requested", .uint(report.requested)), ("written", .uint(report.written)),
                ("verified", .bool(verified)), ("mismatch", report.mismatch.map { .string($0.hex) } ?? .null),
            ]
            o.text = ["wrote \(counted(report.written, "byte")) at \(start.hex)\(verified ? " (verified)" : "")"]
            o.value = .int(Int128(report.written))
            if let mismatch = report.mismatch {
                o.status = .partialCopy
                o.message = "verify failed: the byte at \(mismatch.hex) reads back differently"
            }
            return o
        }
    }
}
