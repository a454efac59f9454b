// A line of ASCII is parsed byte by byte (LineCharacters, LineScanner<UInt8>), any other
// line as Characters; a script is split into lines byte by byte. These hold the byte paths
// against the general ones on random lines and scripts: the same statement or the same
// error, and the same lines.

import Testing
import VmioTestSupport

@testable import VmioScript

/// The parse of `line` read the way `bytewise` says: the statement in full (as `dump`
/// prints it, the members of each set in sorted order: two equal sets may list them in
/// different orders), or the error's message with its line and column.
private func parsed(_ line: String, bytewise: Bool) -> String {
    do {
        let statement = try Parser(line: 7, text: line, bytewise: bytewise).statement()
        var text = ""
        dump(statement, to: &text)
        return membersSorted(text)
    } catch {
        return "error: " + error.description
    }
}

/// `dump`'s text with the lines under each `members` header sorted.
private func membersSorted(_ text: String) -> String {
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    func indent(_ line: String) -> Int { line.prefix { $0 == " " }.count }
    var out: [String] = []
    var i = 0
    while i < lines.count {
        out.append(lines[i])
        guard lines[i].hasSuffix(" members") else {
            i += 1
            continue
        }
        let depth = indent(lines[i])
        var j = i + 1
        while j < lines.count, indent(lines[j]) > depth { j += 1 }
        out += lines[i + 1..<j].sorted()
        i = j
    }
    return out.joined(separator: "\n")
}

@Suite("Byte-wise parsing")
struct BytewiseParserTests {
    /// What lines are made of: verbs and keywords, options, values of every kind, the
    /// characters the scanner treats specially, and some that are not ASCII (a combining
    /// accent, CR LF, the Kelvin sign that equals "K", an Arabic prepended mark, a digit).
    static let first = [
        "read", "write", "copy", "search", "scan", "maps", "dump", "let", "expect", "echo", "sleep", "cont", "stop",
        "break", "wait", "symbol", "nope", "",
    ]
    static let pieces = [
        "read", "search", "let", "x", "=", "==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "(", ")", "$", "$x",
        "${x}", "$hit.pc", "$r.rsp", "0x1000", "0x7f00_0000_1000", "8", "16", "4K", "1m", "0xffffffffffffffffff",
        "-5", "1.5", "100ms", "2s", "[heap]", "[heap]+0x10", "libc.so.6+0x10", "sym:main", "sym:libc.so.6:read",
        "1234:0x2000", "$p:0x10", "--format", "--format=u64", "u64", "ptr", "str", "-o", "--output=out.bin", "--nth",
        "--stop", "--attach-timeout", "0.5", "--string", "--u32", "--i32", "--verify", "--wait", "--region",
        "--skip-faults", "--best-effort", "-x", "--", "---", "--=", "\"quoted\"", "\"a b\"", "\"a\\\"b\"",
        "\"\\n\\t\\0\\\\\"", "\"\\q\"", "\"open", "x\"0a0b\"", "x\"zz\"", "#", "# comment", "\"#\"", "\\", "\"",
        "((1+2)*3)", "(read 0x10 8)", "(search --string \"hi\")", "\t", "  ", "\u{0B}", "\r", "é", "e\u{301}",
        "\r\n", "\u{212A}", "1\u{212A}", "\u{0600}", "٣", "日本", "\u{301}", "-\u{301}", "=\u{301}", "\"\u{301}",
        "(\u{301}", "#\u{301}",
    ]

    /// A random line: mostly a verb or keyword, then up to ten pieces, mostly spaced.
    static func line(_ random: inout SplitMix64) -> String {
        var line =
            Bool.random(using: &random) ? "" : String(repeating: " ", count: Int.random(in: 0...2, using: &random))
        line += first.randomElement(using: &random)!
        for _ in 0..<Int.random(in: 0...10, using: &random) {
            let glue = Int.random(in: 0..<10, using: &random)
            line += glue < 7 ? " " : glue < 8 ? "\t" : ""
            line += pieces.randomElement(using: &random)!
        }
        return line
    }

    @Test("a line parses to the same statement, or the same error, byte by byte as by Characters")
    func sameParseAsTheGeneralPath() {
        var random = SplitMix64(seed: 16)
        var ascii = 0, statements = 0, errors = 0
        for _ in 0..<3000 {
            let line = Self.line(&random)
            if LineCharacters(line).ascii != nil { ascii += 1 }
            let bytewise = parsed(line, bytewise: true), general = parsed(line, bytewise: false)
            #expect(bytewise == general, "\(line.debugDescription)")
            if general.hasPrefix("error: ") { errors += 1 } else { statements += 1 }
        }
        // The lines exercise both paths, and both outcomes.
        #expect(ascii > 1000 && ascii < 2900, "\(ascii) ASCII lines")
        #expect(statements > 200 && errors > 500, "\(statements) statements, \(errors) errors")
    }

    @Test("edge cases parse the same both ways")
    func edgeCases() {
        let lines = [
            "", " ", "\t", "#", "read", "read 0x10", "read 0x10 8 --format", "read 0x10 8 --format=", "read 0x10 8 -",
            "read 0x10 8 --format u64 --format u8", "echo \"unterminated", "echo \"\\", "echo \"\\x\"", "echo a\"b\"c",
            "echo (\"a\\\"b\")", "expect (1", "expect 1)", "expect 1 ==", "let = 1", "let x", "let x =", "let 1x = 2",
            "cont --wait", "cont --now", "stop now", "sleep", "sleep 1h", "read\r\n0x10 8", "read 0x10 8\r",
            "echo e\u{301}", "echo \u{212A}", "read 0x10 1\u{212A}", "read 0x10 8 -\u{301}f",
            "read 0x10 8 --format=\u{301}u8",
            "read \u{0600}0x10 8", "expect \"é\" == \"e\u{301}\"",
            "expect " + String(repeating: "(", count: 65) + "1" + String(repeating: ")", count: 65),
        ]
        for line in lines {
            #expect(parsed(line, bytewise: true) == parsed(line, bytewise: false), "\(line.debugDescription)")
        }
        // Lines that are not ASCII, or hold a CR LF (one Character), are read as Characters.
        #expect(LineCharacters("read 0x10 8").ascii != nil)
        #expect(LineCharacters("echo é").ascii == nil && LineCharacters("a\r\nb").ascii == nil)
        #expect(LineCharacters("a\rb").ascii?.count == 3 && LineCharacters("a\r\nb").count == 3)
    }

    @Test("a script splits into the lines a split on the Character \"\\n\" gives")
    func linesAsTheCharacterSplit() {
        var random = SplitMix64(seed: 8)
        let parts = ["read 0x10 8", "\n", "\n", "\r\n", "\r", "\n\r", "é", "e\u{301}", "\u{301}", " ", "\u{0600}", ""]
        for _ in 0..<1000 {
            let script = (0..<Int.random(in: 0...12, using: &random)).map { _ in
                parts.randomElement(using: &random)!
            }.joined()
            let general = script.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            #expect(Interpreter.lines(of: script) == general, "\(script.debugDescription)")
        }
        #expect(Interpreter.lines(of: "a\r\nb\nc\n") == ["a\r\nb", "c", ""])
    }
}
