// Inputs found by the fuzz targets (Fuzz/, scripts/fuzz), kept as regression tests.

import Testing
import VmioCommands

@testable import VmioScript

@Test func deeplyNestedParenthesesAreAnErrorNotAStackOverflow() {
    // fuzz-session: 2,000 nested parentheses recursed until the stack overflowed.
    let line = "expect " + String(repeating: "(", count: 2000) + "1" + String(repeating: ")", count: 2000)
    #expect(throws: ScriptError.self) { try Parser.parse(line, line: 1) }
    do {
        _ = try Parser.parse(line, line: 1)
    } catch {
        #expect(error.line == 1 && error.column == 8 + Parser.maxNesting)
        #expect(error.message.contains("nest deeper"))
    }
    // Nesting up to the limit still parses.
    let ok =
        "expect " + String(repeating: "(", count: Parser.maxNesting) + "1"
        + String(repeating: ")", count: Parser.maxNesting) + " == 1"
    #expect((try? Parser.parse(ok, line: 1)) != nil)
}

@Test func longRunsOfMinusSignsAreAnError() {
    // The same recursion through unary minus: bounded too.
    #expect(throws: ScriptError.self) {
        try Parser.parse("expect " + String(repeating: "-", count: 5000) + "1", line: 1)
    }
    #expect((try? Parser.parse("expect --1 == 1", line: 1)) != nil)
}
