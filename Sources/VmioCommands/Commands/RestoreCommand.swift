import ArgumentParser
import VmIO
import VmioPtrace

/// `restore DIR`: a dump written back into a process.
public struct RestoreCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Write a dump back into a process (the same one, or one with the same layout).",
        discussion: """
            Every region of the dump must still be mapped in the target as it was dumped \
            (same range and path); otherwise nothing is written and each mismatch is listed, \
            unless it is skipped with --skip SEL or --skip-mismatched. Regions the target maps \
            read-only are left out and reported unless --force, which writes them through \
            /proc/PID/mem. Holes of the dump are not written. --verify reads each chunk back \
            through the write-to-read handover; a mismatch exits 2. --json prints \
            {pid, directory, written, verified, regions: [{start, end, path, action, written}], mismatch}. \
            A restore that writes no region (all mismatched, skipped or read-only) is an error \
            naming why, exit 1.
            """
    )

    @Argument(help: "A directory written by `vmio-ptrace dump`.", transform: nonEmptyPath)
    public var directory: String

    @Option(name: .customLong("skip"), help: "Leave out the regions this selector picks (repeatable).")
    public var skip: [RegionSelector] = []

    @Flag(help: "Leave out regions that no longer match the target's maps instead of refusing.")
    public var skipMismatched = false

    @Flag(help: "Also restore regions the target maps read-only, through /proc/PID/mem.") public var force = false

    @Flag(help: "Read everything back after writing and compare.") public var verify = false

    @OptionGroup public var stop: StopOptions

    public init() {}

    public func run(in context: CommandContext) throws -> Outcome {
        // A bad dump is refused before anything attaches.
        let manifest = try DumpManifest.load(from: directory)
        return try context.withTarget(stop: stop.policy(.required), attach: stop.attach) { target in
            let total = manifest.regions.reduce(0) { $0 + ($1.range?.count ?? 0) }
            let report = try context.withProgress("restore", total: total) {
                try target.restore(
                    manifest, from: directory, skip: skip, skipMismatched: skipMismatched,
                    force: force, verify: verify, progress: $0)
            }
            try refuseNothingWritten(target, report)
            return outcome(target, report)
        }
    }

    /// A restore that writes no region did nothing that was asked of it: an error naming
    /// why (regions mismatched, skipped, read-only), exit 1, never `restored 0 bytes`.
    private func refuseNothingWritten(_ target: Target, _ report: RestoreReport) throws(CommandError) {
        guard !report.regions.contains(where: { $0.action == .write }) else { return }
        var mismatches: [String] = []
        for region in report.regions {
            if case .mismatch(let why) = region.action { mismatches.append(why) }
        }
        let skipped = report.regions.count(where: { $0.action == .skipped })
        let readOnly = report.regions.count(where: { $0.action == .readOnly })
        var why: [String] = []
        if let first = mismatches.first {
            let more = mismatches.count > 1 ? ", …" : ""
            why.append("\(counted(mismatches.count, "region")) no longer mapped as dumped (\(first)\(more))")
        }
        if skipped > 0 { why.append("\(counted(skipped, "region")) skipped") }
        if readOnly > 0 { why.append("\(counted(readOnly, "region")) read-only (--force restores them)") }
        if why.isEmpty { why.append("the dump has no regions") }
        throw .badInput("nothing to restore into pid \(target.pid): " + why.joined(separator: "; "))
    }

    private func outcome(_ target: Target, _ report: RestoreReport) -> Outcome {
        var o = Outcome()
        o.json = [
            ("pid", .int(Int64(target.pid))), ("directory", .string(directory)),
            ("written", .uint(report.written)), ("verified", .bool(verified(report))),
            (
                "regions",
                .array(
                    report.regions.map { r in
                        .object([
                            ("start", .string(r.region.start)), ("end", .string(r.region.end)),
                            ("path", .string(r.region.path)), ("action", .string(r.action.name)),
                            ("written", .uint(r.written)),
                        ])
                    })
            ),
            ("mismatch", report.mismatch.map { .string($0.hex) } ?? .null),
        ]
        let verifiedNote = verified(report) ? " (verified)" : ""
        o.text = ["restored \(counted(report.written, "byte")) into pid \(target.pid)\(verifiedNote)"]
        let readOnly = report.regions.filter { $0.action == .readOnly }
        if !readOnly.isEmpty {
            o.text.append(
                "left out \(counted(readOnly.count, "region")) the target maps read-only (--force restores them)")
        }
        for r in report.regions where r.action != .write && r.action != .readOnly {
            o.text.append("left out \(r.region.start)-\(r.region.end) \(r.region.path): \(r.action.name)")
        }
        o.value = .int(Int128(report.written))
        if let bad = report.mismatch {
            o.status = .partialCopy
            o.message = "verify failed: the byte at \(bad.hex) reads back differently"
        }
        return o
    }
}

extension RestoreCommand {
    /// Whether everything written was read back and compared equal (`--verify`, no mismatch).
    func verified(_ report: RestoreReport) -> Bool { verify && report.mismatch == nil }
}

extension RestoreAction {
    /// The action as the JSON and the text name it.
    public var name: String {
        switch self {
        case .write: "written"
        case .skipped: "skipped"
        case .readOnly: "read-only (use --force)"
        case .mismatch(let why): "mismatch: \(why)"
        }
    }
}
