import ArgumentParser
import VmIO
import VmioPtrace
import VmioScript

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a dump back into a process (the same one, or one with the same layout).",
        discussion: """
            Every region of the dump must still be mapped in the target as it was dumped \
            (same range and path); otherwise nothing is written and each mismatch is listed, \
            unless it is skipped with --skip SEL or --skip-mismatched. Regions the target maps \
            read-only are left out and reported unless --force, which writes them through \
            /proc/PID/mem. Holes of the dump are not written. --verify reads each chunk back \
            through the write-to-read handover; a mismatch exits 2. --json prints \
            {pid, directory, written, regions: [{start, end, path, action, written}], mismatch}.
            """
    )

    @Argument(help: "The target's pid, or `self`.")
    var pid: PID

    @Argument(help: "A directory written by `vmio-ptrace dump`.")
    var directory: String

    @Option(name: .customLong("skip"), help: "Leave out the regions this selector picks (repeatable).")
    var skip: [RegionSelector] = []

    @Flag(help: "Leave out regions that no longer match the target's maps instead of refusing.")
    var skipMismatched = false

    @Flag(help: "Also restore regions the target maps read-only, through /proc/PID/mem.")
    var force = false

    @Flag(help: "Read everything back after writing and compare.")
    var verify = false

    @Flag(help: "Stop every thread while restoring (resumed afterwards on every path).")
    var stop = false

    @OptionGroup var options: TargetOptions

    func run() throws {
        try runReporting(json: options.json) {
            let manifest = try DumpManifest.load(from: directory)
            let target = try Target(pid: pid.value)
            if stop { try target.stop() }
            defer { target.resume() }
            let total = manifest.regions.reduce(0) { $0 + ($1.range?.count ?? 0) }
            let progress = ProgressLine("restore", total: total)
            let report = try target.restore(manifest, from: directory, skip: skip, skipMismatched: skipMismatched,
                                            force: force, verify: verify, progress: progress.update)
            progress.finish()
            if options.json {
                print(JSONValue.object([
                    ("pid", .int(Int64(pid.value))), ("directory", .string(directory)),
                    ("written", .uint(report.written)),
                    ("regions", .array(report.regions.map { r in
                        .object([
                            ("start", .string(r.region.start)), ("end", .string(r.region.end)),
                            ("path", .string(r.region.path)), ("action", .string(r.action.name)),
                            ("written", .uint(r.written)),
                        ])
                    })),
                    ("mismatch", report.mismatch.map { .string($0.hex) } ?? .null),
                ]).rendered)
            } else {
                print("restored \(report.written) bytes into pid \(pid)")
                let readOnly = report.regions.filter { $0.action == .readOnly }
                if !readOnly.isEmpty {
                    print("left out \(readOnly.count) regions the target maps read-only (--force restores them)")
                }
                for r in report.regions where r.action != .write && r.action != .readOnly {
                    print("left out \(r.region.start)-\(r.region.end) \(r.region.path): \(r.action.name)")
                }
            }
            if let bad = report.mismatch {
                printError("vmio-ptrace: verify failed: the byte at \(bad.hex) reads back differently")
                return .partialCopy
            }
            return .ok
        }
    }
}

extension RestoreAction {
    var name: String {
        switch self {
        case .write: "written"
        case .skipped: "skipped"
        case .readOnly: "read-only (use --force)"
        case .mismatch(let why): "mismatch: \(why)"
        }
    }
}
