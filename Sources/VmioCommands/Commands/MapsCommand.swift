import ArgumentParser
import VmIO
import VmioPtrace

/// `maps`: the mappings of a process.
public struct MapsCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "maps",
        abstract: "Show the mappings of a process.",
        discussion: """
            Text output is one line a mapping, as /proc/PID/maps prints it. --json prints {pid, \
            generation, mappings: [{start, end, size, perms, offset, device, inode, path, deleted}]}.
            """
    )

    @Flag(
        help: """
            Show what each mapping costs, from /proc/PID/smaps, as pmap -X does: Size, Rss, Pss, \
            Private_Dirty and Swap in KiB, and the totals. --json adds rss, pss, private_dirty and \
            swap (bytes) to each mapping, and {totals}.
            """)
    public var sizes = false

    public init() {}

    public func run(in context: CommandContext) throws -> Outcome {
        try context.withTarget { target in
            if sizes { return try mapSizes(target) }
            var o = Outcome()
            o.text = target.view.mappings.map(\.description)
            o.json = [
                ("pid", .int(Int64(target.pid))), ("generation", .uint(target.view.generation)),
                ("mappings", .array(target.view.mappings.map(\.json))),
                ("nspid", .array(ProcFS.nspid(target.pid).map { .int(Int64($0)) })),
                ("abi", target.abi.json),
            ]
            o.value = .int(Int128(target.view.mappings.count))
            return o
        }
    }
}

extension Mapping {
    /// The mapping as `maps --json` prints it.
    public var json: JSONValue {
        .object([
            ("start", .string(start.hex)), ("end", .string(end.hex)), ("size", .uint(range.count)),
            ("perms", .string(permissions.description)), ("offset", .string(offset.hex)),
            ("device", .string(device.description)), ("inode", .uint(inode)),
            ("path", .string(path)), ("deleted", .bool(isDeleted)),
        ])
    }
}
