import ArgumentParser
import VmIO
import VmioCommands
import VmioPtrace
import VmioScript

struct Write: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write memory of a process.",
        discussion: """
            Give exactly one source of bytes. The whole range must lie in mappings of the \
            target (nothing is written otherwise). A mapping the target cannot write (r-xp code, \
            r--p data) is refused unless --force, which writes through /proc/PID/mem. \
            --verify reads the range back through the write-to-read handover and compares; a \
            mismatch exits 2. --json prints {pid, address, requested, written, verified, mismatch}.
            """
    )

    @Argument(help: "The target's pid, or `self`.")
    var pid: PID

    @Argument(help: "Where to write: 0x…, decimal, [heap]+OFF, [stack], FILE+OFF, sym:NAME.")
    var address: AddressExpression

    @OptionGroup var payloadOptions: PayloadOptions

    @Flag(help: "Append a NUL to --string or --utf16.")
    var nul = false

    @Option(help: "The contents of this file.")
    var file: String?

    @Flag(help: "Write through /proc/PID/mem, which can patch mappings the target cannot write (code).")
    var force = false

    @Flag(help: "Read the range back after writing and compare.")
    var verify = false

    @OptionGroup var options: OutputOptions

    var payload: PayloadSpec { payloadOptions.spec(file: file, nul: nul) }

    func validate() throws {
        try payloadOptions.validateOne(
            file: file, sources: "--hex, --string, --utf16, --file, --u8…--u64, --i8…--i64, --f32, --f64")
        if nul && payloadOptions.string == nil && payloadOptions.utf16 == nil {
            throw ValidationError("--nul goes with --string or --utf16")
        }
    }

    func run() throws {
        try runReporting(json: options.json) {
            let bytes = try payload.bytes()
            let target = try Target(pid: pid.value)
            return emit(
                try Operations.write(target, bytes, at: try target.resolve(address), force: force, verify: verify),
                json: options.json)
        }
    }
}
