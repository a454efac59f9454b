import ArgumentParser

/// An operation shared by the command line and sessions. Its options (an ArgumentParser
/// definition) are the one definition of its syntax: the command line embeds them after the
/// target's pid, and a session parses its verb's words with them (less the pid).
public protocol VmioCommand: ParsableArguments {
    /// Its name and abstract (what the CLI's subcommand and a session's `help` show).
    static var configuration: CommandConfiguration { get }
    /// Runs the command: its target comes from `context`, and so does where its output goes.
    func run(in context: CommandContext) throws -> Outcome
}
