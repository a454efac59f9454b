import ArgumentParser
import VmIO
import VmioCommands
import VmioPtrace
import VmioScript

struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Save the readable memory of a process into a directory.",
        discussion: """
            DIR receives one data file a region plus manifest.json: each region's range, \
            permissions, path, file offset, bytes saved, and the holes that faulted (zeros \
            in the data file). Files are written under temporary names and renamed when \
            complete; the manifest comes last, so an interrupted dump never looks complete. \
            Without --region every readable mapping is saved except [vvar], [vvar_vclock] \
            and [vsyscall]. Exit status 2 when any hole was met. --json prints \
            {pid, directory, regions, bytes_saved, holes, complete, stopped}.
            """
    )

    @Argument(help: "The target's pid, or `self`.")
    var pid: PID

    @Option(
        name: .customLong("region"),
        help:
            "Which mappings to save (repeatable): a name ([heap], libc.so.6), 0xSTART-0xEND, perm:FLAGS (e.g. perm:rw), or anon."
    )
    var regions: [RegionSelector] = []

    @Option(name: [.customShort("o"), .customLong("output")], help: "The directory to write (created if missing).")
    var directory: String

    @Flag(help: "Stop every thread for a consistent snapshot (resumed afterwards on every path).")
    var stop = false

    @Flag(help: "Replace a dump already in the directory.")
    var force = false

    @Flag(help: "Exit 0 even when holes were met (they are zeros in the data files and listed in the manifest).")
    var bestEffort = false

    @OptionGroup var attach: AttachOptions

    @OptionGroup var options: OutputOptions

    func run() throws {
        try runReporting(json: options.json) {
            let target = try Target(pid: pid.value)
            attach.apply(to: target)
            if stop { try stopForRead(target) }
            defer { target.resume() }
            if target.isStopped { try target.refresh() }
            let total = RegionSelector.select(regions, in: target.view).reduce(0) { $0 + $1.range.count }
            let progress = ProgressLine("dump", total: total)
            // Erased on the error paths too, before the error line is printed.
            var erased = false
            defer { if !erased { progress.finish() } }
            let outcome = try Operations.dump(
                target, regions: regions, to: directory, replace: force,
                bestEffort: bestEffort, progress: progress.update)
            progress.finish()
            erased = true
            return emit(outcome, json: options.json)
        }
    }
}
