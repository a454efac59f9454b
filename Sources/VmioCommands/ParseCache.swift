import ArgumentParser

/// The commands a session has parsed, by verb and options. swift-argument-parser builds a
/// command's whole definition by reflection at every parse (about half a millisecond), so a
/// session line that differs from an earlier one only in its positional values (`read $p 8`
/// at each step of a walk) starts from that earlier parse, with the new values set through
/// the argument types' own `init?(argument:)` and the command validated again. Anything
/// else — a new verb or option, a value the fast way refuses — is parsed in full, so every
/// error message is the parser's own.
public final class ParseCache {
    /// Per verb and option words: the earlier parse, rebound to new positional values by a
    /// closure made for its command type once (a template kept as `any VmioCommand` cost a
    /// dynamic cast and the generic lookups of its positional arguments at every line).
    private var templates: [Key: Rebinding] = [:]

    /// A parsed command with new positional values, validated; nil when the fast way refuses.
    private typealias Rebinding = (ArraySlice<String>) -> (any VmioCommand)?

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
        guard let dash = words.firstIndex(of: "--") else { return try type.parse(words: words) }
        let key = Key(type: ObjectIdentifier(type), words: words[..<dash])
        if let rebinding = templates[key], let command = rebinding(words[(dash + 1)...]) {
            return command
        }
        return try parse(type, words, key: key)
    }

    /// A full parse, kept as the template of `key` when the command's positional arguments
    /// can be set one by one.
    private func parse<Command: VmioCommand>(
        _: Command.Type, _ words: [String], key: Key
    ) throws(CommandError) -> Command {
        let command = try Command.parse(words: words)
        let arguments = Command.positionalArguments
        if !arguments.isEmpty, templates[key] == nil, templates.count < capacity {
            templates[key] = { values in command.rebinding(values, arguments) }
        }
        return command
    }
}

extension VmioCommand {
    /// This command with its positional arguments set from `values`, validated; nil when a
    /// value does not parse, the count differs or validation fails (a full parse says why).
    func rebinding(_ values: ArraySlice<String>, _ arguments: [PositionalArgument<Self>]) -> Self? {
        guard arguments.count == values.count else { return nil }
        var command = self
        var index = values.startIndex
        // Indices, not zip: the zip of a generic command's arguments cost a metadata lookup a line.
        for argument in arguments {
            let word = values[index]
            index += 1
            // A word the parser would take for an option is left to it.
            guard word.utf8.first != UInt8(ascii: "-"), argument.set(&command, word) else {
                return nil
            }
        }
        do { try command.validate() } catch { return nil }
        return command
    }
}
