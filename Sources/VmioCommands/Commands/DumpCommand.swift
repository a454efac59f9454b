import ArgumentParser
import VmIO
import VmioPtrace

/// `dump -o DIR`: the readable memory of a process into a directory.
public struct DumpCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Save the readable memory of a process into a directory.",
        discussion: """
            DIR receives one data file a region plus manifest.json: each region's range, \
            permissions, path, file offset, bytes saved, and the holes that faulted (zeros \
            in the data file). Files are written under temporary names and renamed when \
            complete; the manifest comes last, so an interrupted dump never looks complete; \
            each file is flushed to disk (fsync) before its rename, so this holds across a \
            crash too, unless --no-sync; \
            and a dump that does not finish (a signal, its target gone, a full disk) removes \
            what it wrote. An existing dump is replaced only with --force; a directory holding \
            anything else is refused. \
            Without --region every readable mapping is saved except [vvar], [vvar_vclock] \
            and [vsyscall]. Exit status 2 when any hole was met. --json prints \
            {pid, directory, regions, bytes_saved, holes, complete, stopped}.
            """
    )

    @Option(
        name: .customLong("region"),
        help: """
            Which mappings to save (repeatable): a name ([heap], libc.so.6), 0xSTART-0xEND, perm:FLAGS \
            (e.g. perm:rw), or anon.
            """
    )
    public var regions: [RegionSelector] = []

    @Option(
        name: [.customShort("o"), .customLong("output")],
        help: ArgumentHelp("The directory to write (created if missing).", valueName: "directory"),
        transform: nonEmptyPath)
    public var directory: String

    @Flag(help: "Replace a dump already in the directory.") public var force = false

    @Flag(help: "Do not flush each file to disk (fsync) before its rename: faster, not durable across a crash.")
    public var noSync = false

    @Flag(help: "Exit 0 even when holes were met (they are zeros in the data files and listed in the manifest).")
    public var bestEffort = false

    @OptionGroup public var stop: StopOptions

    public init() {}

    public func run(in context: CommandContext) throws -> Outcome {
        try context.withTarget(stop: stop.policy(.consistent), attach: stop.attach) { target in
            let selected = RegionSelector.select(regions, in: target.view)
            guard !selected.isEmpty else {
                throw CommandError.badInput("no readable mapping of pid \(target.pid) matches the selection")
            }
            let manifest = try context.withProgress("dump", total: selected.reduce(0) { $0 + $1.range.count }) {
                try target.dump(selected, to: directory, replace: force, durable: !noSync, progress: $0)
            }
            return outcome(target, manifest)
        }
    }

    /// With --best-effort, holes (zeros in the data files, listed in the manifest) still give status 0.
    private func outcome(_ target: Target, _ manifest: DumpManifest) -> Outcome {
        let saved = manifest.regions.reduce(0) { $0 + $1.bytesSaved }
        let holes = manifest.regions.flatMap(\.holes)
        var o = Outcome()
        o.json = [
            ("pid", .int(Int64(target.pid))), ("directory", .string(directory)),
            ("regions", .uint(UInt64(manifest.regions.count))), ("bytes_saved", .uint(saved)),
            ("holes", .array(holes.map(\.json))),
            ("complete", .bool(manifest.complete)), ("stopped", .bool(manifest.stopped)),
        ]
        o.text =
            ["dumped \(counted(manifest.regions.count, "region")), \(counted(saved, "byte")), into \(directory)"]
            + holes.map { "hole: \($0.length) bytes at \($0.address) (\($0.reason))" }
        o.value = .int(Int128(saved))
        if !manifest.complete {
            o.status = bestEffort ? .ok : .partialCopy
            o.message =
                (bestEffort ? "best effort: " : "dump incomplete: ")
                + "\(counted(holes.count, "hole")), \(holes.reduce(0) { $0 + $1.length }) bytes could not be read"
                + (bestEffort ? " (zeros in the data files)" : "")
        }
        return o
    }
}

extension DumpManifest.Hole {
    /// `{address, length, reason, errno, mechanism}`.
    var json: JSONValue {
        .object([
            ("address", .string(address)), ("length", .uint(length)), ("reason", .string(reason)),
            ("errno", errno.map { .int(Int64($0)) } ?? .null), ("mechanism", mechanism.map { .string($0) } ?? .null),
        ])
    }
}
