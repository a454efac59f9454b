import ArgumentParser
import VmIO
import VmioPtrace
import VmioScript

struct Maps: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the mappings of a process.",
        discussion: "Text output is one line a mapping, as /proc/PID/maps prints it. --json prints {pid, generation, mappings: [{start, end, size, perms, offset, device, inode, path, deleted}]}."
    )

    @Argument(help: "The target's pid, or `self`.")
    var pid: PID

    @OptionGroup var options: TargetOptions

    func run() throws {
        try runReporting(json: options.json) {
            let target = try Target(pid: pid.value)
            if options.json {
                print(JSONValue.object([
                    ("pid", .int(Int64(target.pid))),
                    ("generation", .uint(target.view.generation)),
                    ("mappings", .array(target.view.mappings.map(\.json))),
                ]).rendered)
            } else {
                for mapping in target.view.mappings { print(mapping.description) }
            }
            return .ok
        }
    }
}

extension Mapping {
    var json: JSONValue {
        .object([
            ("start", .string(start.hex)), ("end", .string(end.hex)), ("size", .uint(range.count)),
            ("perms", .string(permissions.description)), ("offset", .string(offset.hex)),
            ("device", .string(device.description)), ("inode", .uint(inode)),
            ("path", .string(path)), ("deleted", .bool(isDeleted)),
        ])
    }
}
