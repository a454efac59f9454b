import Testing
import VmioCommands

// A session's ParseCache starts a line from an earlier parse with the same options and sets
// only the positional values; these check that the command it gives is the one the argument
// parser gives for the same words, and that anything the fast way cannot set is parsed in
// full, with the parser's own error.

/// Everything a command holds, as `dump` shows it (the parsed values of every argument).
private func contents(_ command: any VmioCommand) -> String {
    var text = ""
    dump(command, to: &text)
    return text
}

@Suite("ParseCache")
struct ParseCacheTests {
    /// Lines as a session hands them over (options and flags, `--`, then the positionals),
    /// in an order where each later one reuses an earlier one's options.
    static let lines: [(any VmioCommand.Type, [String])] = [
        (ReadCommand.self, ["--format", "u64", "--", "0x1000", "8"]),
        (ReadCommand.self, ["--format", "u64", "--", "0x7f0000002008", "16"]),
        (ReadCommand.self, ["--format", "u64", "--", "[heap]+0x10", "0x20"]),
        (ReadCommand.self, ["--format", "hex", "--skip-faults", "--", "0x1000", "4K"]),
        (ReadCommand.self, ["--format", "hex", "--skip-faults", "--", "sym:counter", "1M"]),
        (ReadCommand.self, ["--", "0x1000", "3"]),
        (WriteCommand.self, ["--u32", "7", "--verify", "--", "0x2000"]),
        (WriteCommand.self, ["--u32", "7", "--verify", "--", "0x3000"]),
        (CopyCommand.self, ["--", "12:0x1000", "13:0x2000", "64"]),
        (CopyCommand.self, ["--", "14:0x5000", "12:0x9000", "0x40"]),
        (SymbolCommand.self, ["--", "0x1000", "0x2000"]),
        (SymbolCommand.self, ["--", "0x1000"]),
    ]

    @Test("a line reusing an earlier parse gives the command the parser gives")
    func sameCommandAsTheParser() throws {
        let cache = ParseCache()
        for (type, words) in Self.lines {
            let cached = try cache.parse(type, words: words)
            let parsed = try type.parse(words: words)
            #expect(contents(cached) == contents(parsed), "\(type) \(words)")
        }
    }

    @Test("a value the fast way refuses is parsed in full, with the parser's error")
    func refusedValuesAreParsedInFull() throws {
        let cache = ParseCache()
        _ = try cache.parse(ReadCommand.self, words: ["--format", "u64", "--", "0x1000", "8"])
        for bad in [["0xZZ", "8"], ["0x1000", "eight"], ["0x1000"], ["0x1000", "8", "9"]] {
            let words = ["--format", "u64", "--"] + bad
            let direct = #expect(throws: CommandError.self) { try ReadCommand.parse(words: words) }
            let viaCache = #expect(throws: CommandError.self) { try cache.parse(ReadCommand.self, words: words) }
            #expect(direct?.message == viaCache?.message, "\(bad)")
        }
    }
}
