import ArgumentParser
import VmIO
import VmioPtrace

/// A pid on the command line: a positive number, or `self`.
public struct PID: ExpressibleByArgument, CustomStringConvertible, Sendable {
    public let value: Int32

    public init?(argument: String) {
        if argument == "self" {
            value = ProcFS.ownPID
        } else if let n = Int32(argument), n > 0 {
            value = n
        } else {
            return nil
        }
    }

    public var description: String { String(value) }
    public static var defaultCompletionKind: CompletionKind {
        .custom { _, _, prefix in pidCompletions(prefix: prefix) }
    }
}

/// `PID:ADDR` for copies (ADDR may itself hold colons, as in `sym:FILE:NAME`).
public struct ProcessAddress: ExpressibleByArgument, Sendable {
    public let pid: PID
    public let address: AddressExpression

    public init?(argument: String) {
        guard let colon = argument.firstIndex(of: ":"), let pid = PID(argument: String(argument[..<colon])),
            let address = try? AddressExpression(parsing: String(argument[argument.index(after: colon)...]))
        else { return nil }
        self.pid = pid
        self.address = address
    }
}

/// A length: decimal, `0x` hex, or with a `K`/`M`/`G` suffix.
public struct Length: ExpressibleByArgument, Sendable {
    public let value: UInt64

    public init?(argument: String) {
        guard let v = parseLength(argument) else { return nil }
        value = v
    }
}

extension AddressExpression: ExpressibleByArgument {
    public init?(argument: String) {
        try? self.init(parsing: argument)
    }
}

/// A `--region` or `--skip` selector.
extension RegionSelector: ExpressibleByArgument {
    public init?(argument: String) {
        try? self.init(parsing: argument)
    }
}

extension ValueFormat: ExpressibleByArgument {}
extension UnwindMemoryAccess: ExpressibleByArgument {}
extension DoctorOperation: ExpressibleByArgument {}

/// `--json`, on every command.
public struct OutputOptions: ParsableArguments {
    @Flag(help: "Print one JSON object instead of text.")
    public var json = false

    public init() {}
}

/// The target of a command of the command line: its pid and the output choice. A session
/// has its target already, so its verbs take the command's own options without these.
public struct TargetOptions: ParsableArguments {
    @Argument(help: "The target's pid, or `self`.")
    public var pid: PID

    @OptionGroup public var output: OutputOptions

    public init() {}
}

/// `--attach-timeout`, on every command that can stop a target.
public struct AttachOptions: ParsableArguments {
    @Option(name: .customLong("attach-timeout"), help: AttachOptions.help)
    public var attachTimeout: Double?

    public init() {}

    /// The option's help, shared with ``StopOptions``, which declares the option itself
    /// rather than nest this group: swift-argument-parser's debug-build checks of a
    /// definition cost a factor at each level of nested groups, at every start of the tool.
    static let help = ArgumentHelp(
        "How long to wait for the threads to stop when attaching, in seconds (default 5).",
        discussion: """
            A thread that does not stop in time (uninterruptible sleep, D) is named with its state; \
            reads go on without stopping, anything that needs the stop fails (status 1) with every \
            thread let go.
            """,
        valueName: "seconds")

    public func validate() throws {
        try Self.validate(attachTimeout)
    }

    static func validate(_ attachTimeout: Double?) throws {
        if let attachTimeout, !(attachTimeout > 0 && attachTimeout <= 86_400) {
            throw ValidationError("--attach-timeout must be more than 0 and at most 86400 seconds")
        }
    }

    /// The timeout given, if any (else the target's: 5 s, or the session's).
    public var duration: Duration? {
        attachTimeout.map { .milliseconds(Int64(($0 * 1000).rounded(.up))) }
    }
}

/// `--stop` and `--attach-timeout`, on the commands that can stop their target for a
/// consistent view.
public struct StopOptions: ParsableArguments {
    @Flag(help: "Stop every thread of the target while the command runs (resumed afterwards on every path).")
    public var stop = false

    @Option(name: .customLong("attach-timeout"), help: AttachOptions.help)
    public var attachTimeout: Double?

    public init() {}

    public func validate() throws {
        try AttachOptions.validate(attachTimeout)
        // Said rather than ignored: without --stop nothing attaches, so there is nothing to wait for.
        guard attachTimeout == nil || stop else { throw ValidationError("--attach-timeout applies only with --stop") }
    }

    /// The `--attach-timeout` given, as the commands that only attach take it; nil without
    /// one (the target's own applies). (Making an `AttachOptions` builds its option's
    /// definition: a cost at every command of a session.)
    public var attach: AttachOptions? {
        guard let attachTimeout else { return nil }
        var options = AttachOptions()
        options.attachTimeout = attachTimeout
        return options
    }
}

/// A path option's value as given, refused when empty: `-o ''` would name no file (and a
/// dump directory `''` the root's files).
public func nonEmptyPath(_ text: String) throws -> String {
    guard !text.isEmpty else { throw ValidationError("a path is needed, not an empty string") }
    return text
}
