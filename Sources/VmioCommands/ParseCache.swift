import ArgumentParser

/// The commands a session has parsed, by verb and options. swift-argument-parser builds a
/// command's whole definition by reflection at every parse (about half a millisecond), so a
/// session line that differs from an earlier one only in its positional values (`read $p 8`
/// at each step of a walk) starts from that earlier parse, with the new values set through
/// the argument types' own `init?(argument:)` and the command validated again. Anything
/// else — a new verb or option, a value the fast way refuses — is parsed in full, so every
/// error message is the parser's own.
public final class ParseCache {
    /// Parsed commands by verb and option words.
    private var templates: [Key: any VmioCommand] = [:]

    /// A command type and the words before its positional values. (A type's name
    /// interpolated into a String cost a runtime lookup a line.)
    private struct Key: Hashable {
        let type: ObjectIdentifier
        let words: ArraySlice<String>
    }
    /// Enough for every distinct line of a long script; past it, nothing more is kept.
    private let capacity = 1024

    public init() {}

    /// `type` parsed from a session's `words` — options and flags, `--`, then the positional
    /// values (`commandWords` in VmioScript) — as ``VmioCommand/parse(words:)`` would.
    public func parse(_ type: any VmioCommand.Type, words: [String]) throws(CommandError) -> any VmioCommand {
        try parse(type, words)
    }

    private func parse<Command: VmioCommand>(_: Command.Type, _ words: [String]) throws(CommandError) -> Command {
        guard !Command.positionalArguments.isEmpty, let dash = words.firstIndex(of: "--") else {
            return try Command.parse(words: words)
        }
        let key = Key(type: ObjectIdentifier(Command.self), words: words[..<dash])
        if let template = templates[key] as? Command, let command = template.rebinding(words[(dash + 1)...]) {
            return command
        }
        let command = try Command.parse(words: words)
        if templates.count < capacity { templates[key] = command }
        return command
    }
}

extension VmioCommand {
    /// This command with its positional arguments set from `values`, validated; nil when a
    /// value does not parse, the count differs or validation fails (a full parse says why).
    func rebinding(_ values: ArraySlice<String>) -> Self? {
        let arguments = Self.positionalArguments
        guard arguments.count == values.count else { return nil }
        var command = self
        for (argument, word) in zip(arguments, values) {
            // A word the parser would take for an option is left to it.
            guard !word.hasPrefix("-"), argument.set(&command, word) else { return nil }
        }
        do { try command.validate() } catch { return nil }
        return command
    }
}
