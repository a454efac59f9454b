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

@Test func longSumsAreAnErrorNotAStackOverflow() {
    // A sum of 10,000 terms built a tree 10,000 deep, whose evaluation overflowed the stack
    // (a crash with 2,000 in a debug build). The operators of a line are bounded instead.
    for spaced in [false, true] {
        let terms = Array(repeating: "1", count: 10_000).joined(separator: spaced ? " + " : "+")
        #expect(throws: ScriptError.self) { try Parser.parse("let x = " + terms, line: 1) }
        do {
            _ = try Parser.parse("let x = " + terms, line: 1)
        } catch {
            #expect(error.message.contains("more than \(Parser.maxOperators) operators"), "\(error)")
        }
    }
    // Inside parentheses they count for the line too.
    let grouped = (0..<40).map { _ in "(" + Array(repeating: "1", count: 10).joined(separator: "+") + ")" }
    #expect(throws: ScriptError.self) { try Parser.parse("let x = " + grouped.joined(separator: "*"), line: 1) }
    // Up to the bound still parses.
    let ok = Array(repeating: "1", count: Parser.maxOperators + 1).joined(separator: "+")
    #expect((try? Parser.parse("expect " + ok + " == \(Parser.maxOperators + 1)", line: 1)) != nil)
}
