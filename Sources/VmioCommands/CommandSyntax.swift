import ArgumentParser
import Foundation

/// The syntax of a command as its definition declares it: its positional arguments in
/// order and its options. Read from the definition itself (swift-argument-parser's dump of
/// it, the one `--experimental-dump-help` prints), so the command line and a session check
/// words against the same thing and nothing is written twice.
public struct CommandSyntax: Sendable {
    public struct Positional: Sendable {
        /// The value name, as the parser's messages show it (`<address>`).
        public let name: String
        public let isOptional: Bool
        /// Whether it takes every word left (`symbol ADDR…`).
        public var isRepeating = false
    }

    public struct Option: Sendable {
        /// Every spelling, with its dashes (`-o`, `--output`).
        public let names: [String]
        /// The long spelling (the first, when there is none).
        public let name: String
        public let takesValue: Bool
        /// Given more than once, every value counts (`--region`); otherwise once at most.
        public let isRepeating: Bool
        /// Must be given (`dump -o DIR`).
        public let isRequired: Bool
        /// Takes the next word whatever it looks like (`--i32 -5`).
        public let takesAnyValue: Bool
        /// The value's name (`directory`).
        public let valueName: String
    }

    public let positionals: [Positional]
    public let options: [Option]
    /// Each option's index in ``options`` by every spelling (a session looks up an option a
    /// word).
    private let optionIndex: [String: Int]
    /// The options that must be given (`dump -o DIR`), in order.
    package let requiredOptions: [Option]

    /// The syntax of `type`, without the parser's own `--help` and `--version`.
    public init(of type: any ParsableArguments.Type) {
        let dump = (try? JSONDecoder().decode(Dump.self, from: Data(type._dumpHelp().utf8)))?.command.arguments ?? []
        var positionals: [Positional] = [], options: [Option] = []
        for argument in dump {
            let names = (argument.names ?? []).map { ($0.kind == "short" ? "-" : "--") + $0.name }
            if argument.kind == "positional" {
                positionals.append(
                    Positional(
                        name: argument.valueName ?? "value", isOptional: argument.isOptional,
                        isRepeating: argument.isRepeating))
            } else if !names.contains("--help") && !names.contains("--version") {
                options.append(
                    Option(
                        names: names, name: names.first { $0.hasPrefix("--") } ?? names.first ?? "",
                        takesValue: argument.kind == "option", isRepeating: argument.isRepeating,
                        isRequired: !argument.isOptional && argument.kind == "option",
                        takesAnyValue: argument.parsingStrategy == "unconditional",
                        valueName: argument.valueName ?? "value"))
            }
        }
        self.init(positionals: positionals, options: options)
    }

    init(positionals: [Positional], options: [Option]) {
        self.positionals = positionals
        self.options = options
        var index: [String: Int] = [:]
        for (i, option) in options.enumerated() {
            // The first option of a spelling wins, as a search in order finds it.
            for name in option.names where index[name] == nil { index[name] = i }
        }
        optionIndex = index
        requiredOptions = options.filter(\.isRequired)
    }

    /// The same syntax with more options (a session's own, like `search --nth`).
    public func adding(_ more: [Option]) -> CommandSyntax {
        CommandSyntax(positionals: positionals, options: options + more)
    }

    /// The option spelled `name` (`--output`, `-o`), if any.
    public func option(_ name: String) -> Option? {
        optionIndex[name].map { options[$0] }
    }

    /// An option that takes one value, for a session's own options.
    public static func valued(_ name: String) -> Option {
        Option(
            names: [name], name: name, takesValue: true, isRepeating: false, isRequired: false, takesAnyValue: false,
            valueName: "N")
    }

    // MARK: Checking a command line

    /// What the argument parser lets through or blames on the wrong word, checked first:
    /// an option that takes one value given twice (it would keep the last), and a negative
    /// number where a positional argument goes (it would be taken for an option, and the
    /// next word blamed). Nil when neither is there; the parser judges the rest.
    public func misuse(in arguments: [String]) -> String? {
        var given = Set<String>()
        var position = 0
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            index += 1
            if word == "--" {
                break
            }
            if word.hasPrefix("-"), word.dropFirst().first?.isNumber == true {
                if position < positionals.count {
                    return "The value '\(word)' is invalid for '<\(positionals[position].name)>'"
                }
                continue
            }
            guard word.hasPrefix("-"), word.count > 1 else {
                position += 1
                continue
            }
            let spelled = String(word.prefix { $0 != "=" })
            guard let option = option(spelled) else { continue }
            if option.takesValue && !word.contains("=") { index += 1 }
            if option.takesValue && !option.isRepeating && !given.insert(option.name).inserted {
                return "\(option.name) given twice"
            }
        }
        return nil
    }
}

/// The part of swift-argument-parser's dump of a command that the syntax needs.
private struct Dump: Decodable {
    struct Command: Decodable {
        let arguments: [Argument]?
    }

    struct Argument: Decodable {
        struct Name: Decodable {
            let kind: String
            let name: String
        }

        let kind: String
        let names: [Name]?
        let valueName: String?
        let isOptional: Bool
        let isRepeating: Bool
        let parsingStrategy: String
    }

    let command: Command
}
