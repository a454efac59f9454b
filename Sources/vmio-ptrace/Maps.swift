import ArgumentParser
import VmIO
import VmioCommands
import VmioPtrace
import VmioScript

struct Maps: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the mappings of a process.",
        discussion:
            "Text output is one line a mapping, as /proc/PID/maps prints it. --json prints {pid, generation, mappings: [{start, end, size, perms, offset, device, inode, path, deleted}]}."
    )

    @Argument(help: "The target's pid, or `self`.")
    var pid: PID

    @Flag(
        help: """
            Show what each mapping costs, from /proc/PID/smaps, as pmap -X does: Size, Rss, Pss, \
            Private_Dirty and Swap in KiB, and the totals. --json adds rss, pss, private_dirty and \
            swap (bytes) to each mapping, and {totals}.
            """)
    var sizes = false

    @OptionGroup var options: OutputOptions

    func run() throws {
        try runReporting(json: options.json) {
            let target = try Target(pid: pid.value)
            return emit(sizes ? try Operations.mapSizes(target) : Operations.maps(target), json: options.json)
        }
    }
}
