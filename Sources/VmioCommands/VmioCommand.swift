import ArgumentParser
import VmIO

/// An operation shared by the command line and sessions. Its options (an ArgumentParser
/// definition) are the one definition of its syntax: the command line embeds them after the
/// target's pid, and a session parses its verb's words with them (less the pid).
public protocol VmioCommand: ParsableArguments {
    /// Its name and abstract (what the CLI's subcommand and a session's `help` show).
    static var configuration: CommandConfiguration { get }
    /// Runs the command: its target comes from `context`, and so does where its output goes.
    func run(in context: CommandContext) throws -> Outcome
    /// Its positional arguments in the definition's order, each settable on its own
    /// (``ParseCache``); empty (the default) when they cannot be: variadic or optional ones.
    static var positionalArguments: [PositionalArgument<Self>] { get }
}

extension VmioCommand {
    public static var positionalArguments: [PositionalArgument<Self>] { [] }
}

/// A positional argument of a command, set as the argument parser sets it: from one word,
/// through its type's `init?(argument:)` (none of these has a `transform`).
public struct PositionalArgument<Command> {
    let set: (inout Command, String) -> Bool

    public init<Value: ExpressibleByArgument>(_ keyPath: WritableKeyPath<Command, Value>) {
        set = { command, word in
            guard let value = Value(argument: word) else { return false }
            command[keyPath: keyPath] = value
            return true
        }
    }
}
