import ArgumentParser
import VmIO
import VmioPtrace
import VmioScript

struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Search the memory of a process for bytes, strings or values.",
        discussion: """
            Give exactly one pattern. Typed values are little-endian and, unless --align says \
            otherwise, found only at their natural alignment. Matches that straddle chunk \
            boundaries are found. Unreadable pages are skipped and counted, never fatal. \
            Prints one hit a line: address, region and offset. --json prints \
            {pid, pattern, hits: [{address, region: {start, end, perms, path}, offset}], \
            truncated, scanned, unreadable}.
            """
    )

    @Argument(help: "The target's pid, or `self`.")
    var pid: PID

    @Option(help: "Bytes as hex with ?? wildcards: 'de ad ?? ef'.") var hex: String?
    @Option(help: "A UTF-8 string.") var string: String?
    @Option(help: "A string encoded as UTF-16LE.") var utf16: String?
    @Option(help: "An unsigned 8-bit value (decimal or 0x hex).") var u8: String?
    @Option(help: "An unsigned 16-bit value.") var u16: String?
    @Option(help: "An unsigned 32-bit value.") var u32: String?
    @Option(help: "An unsigned 64-bit value.") var u64: String?
    @Option(help: "A signed 8-bit value.") var i8: String?
    @Option(help: "A signed 16-bit value.") var i16: String?
    @Option(help: "A signed 32-bit value.") var i32: String?
    @Option(help: "A signed 64-bit value.") var i64: String?
    @Option(help: "A 32-bit float (exact bit pattern).") var f32: String?
    @Option(help: "A 64-bit float (exact bit pattern).") var f64: String?

    @Option(help: "Report only hits at multiples of this (default: the value's width for typed values, else 1).")
    var align: UInt64?

    @Option(name: .customLong("region"), help: "Where to search (repeatable): a name, 0xSTART-0xEND, perm:FLAGS, or anon. Default: every readable mapping.")
    var regions: [RegionSelector] = []

    @Option(help: "Stop after this many hits.")
    var max: Int = 1000

    @Flag(help: "Stop every thread while searching (resumed afterwards on every path).")
    var stop = false

    @OptionGroup var options: TargetOptions

    private var typed: [(ValueFormat, String?)] {
        [(.u8, u8), (.u16, u16), (.u32, u32), (.u64, u64), (.i8, i8), (.i16, i16), (.i32, i32),
         (.i64, i64), (.f32, f32), (.f64, f64)]
    }

    func validate() throws {
        let given = [hex, string, utf16].compactMap { $0 }.count + typed.compactMap(\.1).count
        guard given == 1 else {
            throw ValidationError("give exactly one of --hex, --string, --utf16, --u8…--u64, --i8…--i64, --f32, --f64")
        }
        guard max > 0 else { throw ValidationError("--max must be at least 1") }
        if let align, align == 0 { throw ValidationError("--align must be at least 1") }
    }

    func run() throws {
        try runReporting(json: options.json) {
            let (pattern, label) = try makePattern()
            let target = try Target(pid: pid.value)
            if stop { try target.stop() }
            defer { target.resume() }
            let selected = RegionSelector.select(regions, in: target.view)
            guard !selected.isEmpty else { throw BadInput("no readable mapping of pid \(pid) matches the selection") }
            let progress = ProgressLine("search", total: selected.reduce(0) { $0 + $1.range.count })
            let report = try target.search(pattern, in: selected, max: max, progress: progress.update)
            progress.finish()
            let unreadable = report.holes.reduce(0) { $0 + $1.length }
            if options.json {
                print(JSONValue.object([
                    ("pid", .int(Int64(pid.value))), ("pattern", .string(label)),
                    ("hits", .array(report.hits.map { hit in
                        .object([
                            ("address", .string(hit.address.hex)),
                            ("region", .object([
                                ("start", .string(hit.mapping.start.hex)), ("end", .string(hit.mapping.end.hex)),
                                ("perms", .string(hit.mapping.permissions.description)), ("path", .string(hit.mapping.path)),
                            ])),
                            ("offset", .string(hit.offsetInMapping.hex)),
                        ])
                    })),
                    ("truncated", .bool(report.truncated)), ("scanned", .uint(report.scanned)),
                    ("unreadable", .uint(unreadable)),
                ]).rendered)
            } else {
                for hit in report.hits {
                    let name = hit.mapping.path.isEmpty ? "anon" : hit.mapping.path
                    print("\(hit.address.hex)  \(name)+\(hit.offsetInMapping.hex)  (\(hit.mapping.permissions) \(hit.mapping.start.hex)-\(hit.mapping.end.hex))")
                }
                var summary = "\(report.hits.count) hit\(report.hits.count == 1 ? "" : "s") in \(report.scanned) bytes"
                if report.truncated { summary += " (stopped at --max \(max))" }
                if unreadable > 0 { summary += "; \(unreadable) unreadable bytes skipped" }
                printError(summary)
            }
            return .ok
        }
    }

    private func makePattern() throws -> (BytePattern, String) {
        if let hex { return (try BytePattern(hex: hex, alignment: align ?? 1), "hex:" + hex) }
        if let string { return (try BytePattern(bytes: Array(string.utf8), alignment: align ?? 1), "string:" + string) }
        if let utf16 {
            let bytes = utf16.utf16.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
            return (try BytePattern(bytes: bytes, alignment: align ?? 1), "utf16:" + utf16)
        }
        for case let (format, text?) in typed {
            guard let bytes = encode(text, as: format) else {
                throw BadInput("'\(text)' is not a valid \(format.rawValue) value")
            }
            return (try BytePattern(bytes: bytes, alignment: align ?? UInt64(format.width!)), "\(format.rawValue):\(text)")
        }
        throw BadInput("no pattern")
    }
}
