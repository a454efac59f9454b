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

    @OptionGroup var options: OutputOptions

    func run() throws {
        try runReporting(json: options.json) {
            emit(Operations.maps(try Target(pid: pid.value)), json: options.json)
        }
    }
}
