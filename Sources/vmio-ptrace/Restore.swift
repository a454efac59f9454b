import ArgumentParser
import VmIO
import VmioCommands
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

    @OptionGroup var attach: AttachOptions

    @OptionGroup var options: OutputOptions

    func run() throws {
        try runReporting(json: options.json) {
            let manifest = try DumpManifest.load(from: directory)
            let target = try Target(pid: pid.value)
            attach.apply(to: target)
            if stop { try target.stop() }
            defer { target.resume() }
            let progress = ProgressLine("restore", total: manifest.regions.reduce(0) { $0 + ($1.range?.count ?? 0) })
            // Erased on the error paths too, before the error line is printed.
            var erased = false
            defer { if !erased { progress.finish() } }
            let outcome = try Operations.restore(
                target, from: directory, skip: skip, skipMismatched: skipMismatched,
                force: force, verify: verify, progress: progress.update)
            progress.finish()
            erased = true
            return emit(outcome, json: options.json)
        }
    }
}
