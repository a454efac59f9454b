import ArgumentParser
import VmIO
import VmioCommands
import VmioPtrace
import VmioScript

struct Copy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy memory from one process to another (or within one).",
        discussion: """
            Bytes go through a bounded 1 MiB buffer, so memory use stays flat for any length. \
            The destination range must lie in mappings of the destination. A copy that faults \
            reports how many bytes moved and the first faulting address, and exits 2; with \
            --skip-faults, unreadable source pages are stepped over (the destination keeps its \
            bytes there), each hole is reported, and the exit status is 2 if any hole was \
            skipped. --json prints {source, destination, requested, moved, complete, holes, stop}.
            """
    )

    @Argument(help: "SRCPID:ADDR — where to copy from.")
    var source: ProcessAddress

    @Argument(help: "DSTPID:ADDR — where to copy to.")
    var destination: ProcessAddress

    @Argument(help: "How many bytes to copy.")
    var length: Length

    @Flag(help: "Step over source pages that fault instead of stopping at the first.")
    var skipFaults = false

    @Flag(help: "Stop both processes for the copy (resumed afterwards on every path).")
    var stop = false

    @Flag(
        help:
            "Copy past unreadable source pages, write zeros in their place, list them, and exit 0 unless the copy stopped early."
    )
    var bestEffort = false

    @OptionGroup var attach: AttachOptions

    @OptionGroup var options: OutputOptions

    func run() throws {
        try runReporting(json: options.json) {
            let from = try Target(pid: source.pid.value)
            let to = source.pid.value == destination.pid.value ? from : try Target(pid: destination.pid.value)
            let fromAddress = try from.resolve(source.address)
            let toAddress = try to.resolve(destination.address)
            attach.apply(to: from)
            attach.apply(to: to)
            if stop {
                try from.stop()
                try to.stop()
            }
            defer {
                from.resume()
                to.resume()
            }
            return emit(
                try Operations.copy(
                    from: from, at: fromAddress, to: to, at: toAddress, count: length.value,
                    skipFaults: skipFaults, bestEffort: bestEffort), json: options.json)
        }
    }
}
