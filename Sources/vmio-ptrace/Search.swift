import ArgumentParser
import VmIO
import VmioCommands
import VmioPtrace
import VmioScript

struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Search the memory of a process for bytes, strings or values.",
        discussion: """
            Give exactly one pattern. Typed values are little-endian and, unless --align says \
            otherwise, found only at their natural alignment. Matches that straddle chunk \
            boundaries are found. Unreadable pages are skipped and counted, never fatal. \
            Prints one hit a line: address, region and offset; a summary goes to stderr. \
            --json prints {pid, pattern, hits: [{address, region: {start, end, perms, path}, offset}], \
            truncated, scanned, unreadable}.
            """
    )

    @Argument(help: "The target's pid, or `self`.")
    var pid: PID

    @OptionGroup var patternOptions: PayloadOptions

    @Option(help: "Report only hits at multiples of this (default: the value's width for typed values, else 1).")
    var align: UInt64?

    @Option(
        name: .customLong("region"),
        help:
            "Where to search (repeatable): a name, 0xSTART-0xEND, perm:FLAGS, or anon. Default: every readable mapping."
    )
    var regions: [RegionSelector] = []

    @Option(help: "Stop after this many hits.")
    var max: Int = 1000

    @Flag(help: "Stop every thread while searching (resumed afterwards on every path).")
    var stop = false

    @OptionGroup var attach: AttachOptions

    @OptionGroup var options: OutputOptions

    var payload: PayloadSpec { patternOptions.spec() }

    func validate() throws {
        try patternOptions.validateOne(sources: "--hex, --string, --utf16, --u8…--u64, --i8…--i64, --f32, --f64")
        guard max > 0 else { throw ValidationError("--max must be at least 1") }
        if let align, align == 0 { throw ValidationError("--align must be at least 1") }
    }

    func run() throws {
        try runReporting(json: options.json) {
            let pattern: BytePattern
            do { pattern = try payload.pattern(alignment: align) } catch VmIoError.badPattern(_, let reason) {
                // Name the pattern, not an "address".
                throw CommandError.badInput("bad search pattern '\(patternOptions.hex ?? payload.label)': \(reason)")
            }
            let target = try Target(pid: pid.value)
            attach.apply(to: target)
            if stop { try stopForRead(target) }
            defer { target.resume() }
            let total = RegionSelector.select(regions, in: target.view).reduce(0) { $0 + $1.range.count }
            let progress = ProgressLine("search", total: total)
            // Erased on the error paths too, before the error line is printed.
            var erased = false
            defer { if !erased { progress.finish() } }
            let (outcome, _) = try Operations.search(
                target, pattern: pattern, label: payload.label, regions: regions,
                max: max, progress: progress.update)
            progress.finish()
            erased = true
            return emit(outcome, json: options.json)
        }
    }
}
