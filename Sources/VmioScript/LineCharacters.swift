/// The characters of one script line, indexed by column (0-based), as the parser reads them.
///
/// A line of ASCII only is kept as its bytes, each one Character, so the parser's hot loops
/// compare bytes rather than Characters (whose comparisons and properties go through the
/// Unicode tables: most of a short line's parse). Any other line — a byte past 0x7f, or a
/// carriage return before a line feed, which Swift counts as one Character — is kept as
/// Characters and read the general way, so columns and comparisons stay the Characters'.
struct LineCharacters {
    /// The line's bytes when each is one Character (ASCII, no CR LF pair); nil otherwise.
    let ascii: [UInt8]?
    /// The line's Characters when it is not kept as bytes; empty otherwise.
    let characters: [Character]
    /// How many Characters (columns) the line has.
    let count: Int

    /// The characters of `text`; `bytewise: false` keeps even an ASCII line as Characters
    /// (the general path, which the tests hold the byte path against).
    init(_ text: String, bytewise: Bool = true) {
        if bytewise, let bytes = Self.asciiBytes(text) {
            ascii = bytes
            characters = []
            count = bytes.count
        } else {
            ascii = nil
            characters = Array(text)
            count = characters.count
        }
    }

    /// The UTF-8 of `text` when every byte is a Character of its own; nil otherwise.
    static func asciiBytes(_ text: String) -> [UInt8]? {
        let bytes = Array(text.utf8)
        var previous: UInt8 = 0
        for byte in bytes {
            if byte >= 0x80 || (previous == 0x0d && byte == 0x0a) { return nil }
            previous = byte
        }
        return bytes
    }

    /// The Character at column `i` (0-based).
    subscript(i: Int) -> Character {
        if let ascii { return Character(Unicode.Scalar(ascii[i])) }
        return characters[i]
    }

    /// The Characters of columns `range`.
    subscript(range: Range<Int>) -> [Character] {
        if let ascii { return ascii[range].map { Character(Unicode.Scalar($0)) } }
        return Array(characters[range])
    }

    /// The 0-based column of the first character that is not whitespace, if any.
    var firstNonSpace: Int? {
        if let ascii { return ascii.firstIndex { !$0.isSpace } }
        return characters.firstIndex { !$0.isSpace }
    }
}

/// A unit of a line as the word scanner reads it: a Character (any line), or a byte (a
/// line of ASCII, ``LineCharacters/ascii``), each one column.
protocol LineUnit: Equatable {
    /// The unit of an ASCII character.
    init(asciiUnit: UInt8)
    /// Whitespace: space, tab to carriage return (for a Character, any Unicode whitespace).
    var isSpace: Bool { get }
    /// The text of `units`.
    static func string(_ units: [Self]) -> String
}

extension LineUnit {
    static var space: Self { Self(asciiUnit: 0x20) }
    static var hash: Self { Self(asciiUnit: UInt8(ascii: "#")) }
    static var quote: Self { Self(asciiUnit: UInt8(ascii: "\"")) }
    static var backslash: Self { Self(asciiUnit: UInt8(ascii: "\\")) }
    static var open: Self { Self(asciiUnit: UInt8(ascii: "(")) }
    static var close: Self { Self(asciiUnit: UInt8(ascii: ")")) }
}

extension Character: LineUnit {
    init(asciiUnit: UInt8) { self.init(Unicode.Scalar(asciiUnit)) }
    static func string(_ units: [Character]) -> String { String(units) }
}

extension UInt8: LineUnit {
    init(asciiUnit: UInt8) { self = asciiUnit }
    var isSpace: Bool { self == 0x20 || (0x09...0x0d).contains(self) }
    static func string(_ units: [UInt8]) -> String { String(decoding: units, as: UTF8.self) }
}

/// The word and quote scanning of ``Parser``, over a line's bytes or its Characters (the
/// one code, specialized for each).
struct LineScanner<Unit: LineUnit> {
    let text: [Unit]
    let line: Int

    func fail(_ column: Int, _ message: String) -> ScriptError {
        ScriptError(line: line, column: column, message)
    }

    /// Splits `text[from..<end]` into words: whitespace separates; `"…"` quotes (with
    /// `\"`, `\\`, `\n`, `\t`, `\0` escapes); parentheses group; `#` at the start of a word
    /// ends the line (inside a word, `a#b`, it is part of it, as in a shell).
    func words(from: Int, to end: Int) throws(ScriptError) -> [Word] {
        var out: [Word] = []
        var i = from
        while i < end {
            let c = text[i]
            if c.isSpace {
                i += 1
                continue
            }
            if c == .hash { break }
            let start = i
            var word: [Unit] = []
            var quoted = false
            var depth = 0
            while i < end {
                let c = text[i]
                if depth == 0 && c.isSpace { break }
                if c == .quote {
                    quoted = true
                    let (s, next) = try quotedString(at: i, end: end)
                    if depth > 0 || i > start {
                        // A quote inside a word keeps its quotes, and escapes what they would end.
                        word.append(.quote)
                        for u in s {
                            if u == .quote || u == .backslash { word.append(.backslash) }
                            word.append(u)
                        }
                        word.append(.quote)
                    } else {
                        word += s
                    }
                    i = next
                    continue
                }
                if c == .open {
                    depth += 1
                    // The parser recurses a level a parenthesis: bound it (deep lines overflowed
                    // the stack).
                    if depth > Parser.maxNesting {
                        throw fail(i + 1, "parentheses nest deeper than \(Parser.maxNesting)")
                    }
                }
                if c == .close {
                    depth -= 1
                    if depth < 0 { throw fail(i + 1, "unbalanced ')'") }
                }
                word.append(c)
                i += 1
            }
            if depth > 0 { throw fail(start + 1, "unbalanced '('") }
            // A word that is exactly one quoted string is that string; otherwise keep quotes
            // inside.
            let isPlainQuote = quoted && text[start] == .quote && i == endOfQuote(start, end)
            out.append(Word(text: Unit.string(word), column: start + 1, quoted: isPlainQuote))
        }
        return out
    }

    private func endOfQuote(_ start: Int, _ end: Int) -> Int {
        (try? quotedString(at: start, end: end).1) ?? -1
    }

    /// The units of the quote opening at `i`, escapes replaced, and the index just past its
    /// closing quote.
    func quotedString(at i: Int, end: Int) throws(ScriptError) -> ([Unit], Int) {
        var j = i + 1
        var s: [Unit] = []
        while j < end {
            let c = text[j]
            if c == .quote { return (s, j + 1) }
            if c == .backslash {
                guard j + 1 < end else { break }
                switch text[j + 1] {
                case Unit(asciiUnit: UInt8(ascii: "n")): s.append(Unit(asciiUnit: 0x0a))
                case Unit(asciiUnit: UInt8(ascii: "t")): s.append(Unit(asciiUnit: 0x09))
                case .quote: s.append(.quote)
                case .backslash: s.append(.backslash)
                case Unit(asciiUnit: UInt8(ascii: "0")): s.append(Unit(asciiUnit: 0))
                default: throw fail(j + 1, "unknown escape \\\(Unit.string([text[j + 1]]))")
                }
                j += 2
                continue
            }
            s.append(c)
            j += 1
        }
        throw fail(i + 1, "unterminated string")
    }
}
