import ArgumentParser
import Foundation

extension VmioCommand {
    /// The command from a session verb's words (their values already worked out), parsed
    /// and checked by the command's own definition, as the command line is; a malformed
    /// value is a usage error.
    public static func parse(words: [String]) throws(CommandError) -> Self {
        do {
            return try parse(words)
        } catch {
            throw .usage(oneLineMessage(fullMessage(for: error)))
        }
    }
}

/// The parser's error on one line: the error and any list of valid choices (as `a, b, c`),
/// without the usage block that follows.
public func oneLineMessage(_ full: String) -> String {
    var parts: [String] = [], choices: [String] = []
    for raw in full.split(whereSeparator: \.isNewline) {
        let line = raw.trimmingCharacters(in: .whitespaces)
        if line.hasPrefix("Usage:") || line.hasPrefix("Help:") || line.hasPrefix("See '") { break }
        if line.hasPrefix("- ") {
            choices.append(String(line.dropFirst(2)))
            continue
        }
        if !line.isEmpty { parts.append(line.hasPrefix("Error: ") ? String(line.dropFirst(7)) : line) }
    }
    return (parts.joined(separator: " ") + (choices.isEmpty ? "" : " " + choices.joined(separator: ", ")))
}
