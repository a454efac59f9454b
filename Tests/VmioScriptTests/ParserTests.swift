// The session language's parser: every verb and keyword into the right Statement,
// expressions into the right tree, and bad lines into the exact `line:column` message.

import Testing
import VmIO
import VmioCommands

@testable import VmioScript

// MARK: - Helpers

/// Parses one line (line 1 unless given).
private func parse(_ text: String, line: Int = 1) throws -> Statement {
    try Parser.parse(text, line: line)
}

/// The ScriptError message for a line that must not parse, or nil when it parsed.
private func parseError(_ text: String, line: Int = 1) -> String? {
    do {
        _ = try Parser.parse(text, line: line)
        return nil
    } catch {
        return error.description
    }
}

/// The verb call of a line that must be a verb.
private func verbCall(_ text: String) throws -> VerbCall {
    guard case .verb(let call) = try parse(text) else {
        Issue.record("'\(text)' did not parse as a verb")
        throw Unexpected()
    }
    return call
}

private struct Unexpected: Error {}

/// An expression as a compact, fully parenthesised string, columns included where the
/// tree keeps them (`$x@5`), so a whole tree compares in one `#expect`.
private func show(_ e: Expression) -> String {
    switch e {
    case .literal(let v): return show(v)
    case .variable(let name, let column): return "$\(name)@\(column)"
    case .address(let a, let column):
        var s: String
        switch a.base {
        case .absolute(let v): s = "abs(0x" + String(v, radix: 16) + ")"
        case .region(let name): s = "region(\(name))"
        case .symbol(let name, let file): s = "sym(\(file.map { $0 + ":" } ?? "")\(name))"
        }
        for (negative, amount) in a.offsets { s += (negative ? "-0x" : "+0x") + String(amount, radix: 16) }
        return s + "@\(column)"
    case .binary(let op, let l, let r, let column): return "(\(show(l)) \(op)@\(column) \(show(r)))"
    case .negate(let inner, let column): return "(-@\(column) \(show(inner)))"
    case .call(let call): return show(call)
    case .field(let inner, let name, let column): return "\(show(inner)).\(name)@\(column)"
    }
}

private func show(_ v: Value) -> String {
    switch v {
    case .int(let i): return "int(\(i))"
    case .double(let d): return "double(\(d))"
    case .string(let s): return "str(\(s.debugDescription))"
    case .bytes(let b): return "bytes(\(hexString(b)))"
    case .record(let r): return "record(\(r.fields.map(\.name).joined(separator: ",")))"
    }
}

/// A verb call as `{verb pos… --opt=val… --flag…}` (options and flags sorted).
private func show(_ call: VerbCall) -> String {
    var parts = [call.verb.rawValue] + call.positionals.map(\.text)
    for (name, words) in call.options.sorted(by: { $0.key < $1.key }) {
        for w in words { parts.append("\(name)=\(w.text)") }
    }
    parts += call.flags.sorted()
    return "{" + parts.joined(separator: " ") + "}"
}

/// The expression of `let x = TEXT`.
private func expression(_ text: String) throws -> String {
    guard case .assign(let name, let e) = try parse("let x = " + text) else {
        Issue.record("not an assignment: \(text)")
        throw Unexpected()
    }
    #expect(name == "x")
    return show(e)
}

// MARK: - Statements

@Suite struct ParserStatementTests {
    @Test func emptyLinesAndComments() throws {
        for text in ["", "   ", "\t", "# a comment", "   # indented comment", "#"] {
            guard case .empty = try parse(text) else {
                Issue.record("'\(text)' is not empty")
                continue
            }
        }
        // A comment after a command is dropped.
        #expect(show(try verbCall("maps # every mapping")) == "{maps}")
        // A '#' inside quotes is text, not a comment.
        guard case .echo(let words) = try parse(##"echo "# not a comment" # but this is"##) else {
            Issue.record("not echo")
            return
        }
        #expect(words.map(\.text) == ["# not a comment"])
        // Inside a word '#' is part of it, as in a shell; a comment starts a word.
        guard case .echo(let inWord) = try parse("echo a#b c#  #d e") else {
            Issue.record("not echo")
            return
        }
        #expect(inWord.map(\.text) == ["a#b", "c#"])
        #expect(throws: ScriptError.self) { try parse("let x = 1#2") }
        #expect(show(try verbCall("maps #every mapping")) == "{maps}")
    }

    @Test func maps() throws {
        let call = try verbCall("maps")
        #expect(call.verb == .maps && call.column == 1)
        #expect(call.positionals.isEmpty && call.options.isEmpty && call.flags.isEmpty)
    }

    @Test func read() throws {
        #expect(show(try verbCall("read 0x1000 16")) == "{read 0x1000 16}")
        let call = try verbCall("  read $m+0x100 8 --format u64 --skip-faults")
        #expect(call.verb == .read && call.column == 3)
        #expect(
            call.positionals == [
                Word(text: "$m+0x100", column: 8, quoted: false), Word(text: "8", column: 17, quoted: false),
            ])
        #expect(call.option("--format") == Word(text: "u64", column: 28, quoted: false))
        #expect(call.flags == ["--skip-faults"])
        // Options may come before positionals, and PID:ADDR is one positional.
        #expect(
            show(try verbCall("read --format str 1234:[heap]+0x10 0x20")) == "{read 1234:[heap]+0x10 0x20 --format=str}"
        )
    }

    @Test func write() throws {
        #expect(
            show(try verbCall(#"write $m --hex "de ad be ef" --force --verify"#))
                == "{write $m --hex=de ad be ef --force --verify}")
        #expect(show(try verbCall(#"write $m --string "hi\n" --nul"#)) == "{write $m --string=hi\n --nul}")
        #expect(
            show(try verbCall("write [heap] --u64 0x1122334455667788")) == "{write [heap] --u64=0x1122334455667788}")
        #expect(show(try verbCall("write sym:counter --i32 -5")) == "{write sym:counter --i32=-5}")
        #expect(show(try verbCall("write $a --f64 3.5")) == "{write $a --f64=3.5}")
        #expect(show(try verbCall(#"write $a --utf16 "wide""#)) == "{write $a --utf16=wide}")
        #expect(show(try verbCall("write $a --file /tmp/patch.bin")) == "{write $a --file=/tmp/patch.bin}")
        for format in ["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f32", "f64"] {
            #expect(show(try verbCall("write 0x10 --\(format) 1")) == "{write 0x10 --\(format)=1}")
        }
        // A quoted value that looks like an option is a value.
        let call = try verbCall(#"write 0x10 --string "--force""#)
        #expect(call.option("--string")?.text == "--force" && call.option("--string")?.quoted == true)
        #expect(call.flags.isEmpty)
    }

    @Test func copy() throws {
        #expect(show(try verbCall("copy $m 4321:0x7f0000001000 16")) == "{copy $m 4321:0x7f0000001000 16}")
        #expect(
            show(try verbCall("copy 1:[heap] 2:[heap]+0x40 0x1000 --skip-faults"))
                == "{copy 1:[heap] 2:[heap]+0x40 0x1000 --skip-faults}")
    }

    @Test func search() throws {
        #expect(show(try verbCall(#"search --string "VMIO-MARKER-0001""#)) == "{search --string=VMIO-MARKER-0001}")
        #expect(
            show(try verbCall(#"search --hex "de ad ?? ef" --region [heap] --region anon --max 3 --align 8"#))
                == "{search --align=8 --hex=de ad ?? ef --max=3 --region=[heap] --region=anon}")
        #expect(
            show(try verbCall("search --u32 0xc0ffee --nth 2 --region perm:rw"))
                == "{search --nth=2 --region=perm:rw --u32=0xc0ffee}")
        // --region repeats, in order.
        let call = try verbCall("search --string x --region a --region b --region c")
        #expect(call.options["--region"]?.map(\.text) == ["a", "b", "c"])
    }

    @Test func dumpAndRestore() throws {
        #expect(
            show(try verbCall("dump --region [heap] -o /tmp/d --region [stack] --force"))
                == "{dump --output=/tmp/d --region=[heap] --region=[stack] --force}")
        #expect(
            show(try verbCall(#"restore "/tmp/my dump" --skip [stack] --skip-mismatched --force --verify"#))
                == "{restore /tmp/my dump --skip=[stack] --force --skip-mismatched --verify}")
    }

    @Test func backtraceAndRegs() throws {
        #expect(show(try verbCall("backtrace")) == "{backtrace}")
        #expect(
            show(try verbCall("backtrace --thread 1235 --depth 10 --snapshot"))
                == "{backtrace --depth=10 --thread=1235 --snapshot}")
        #expect(show(try verbCall("regs")) == "{regs}")
        #expect(show(try verbCall("regs --thread 1235")) == "{regs --thread=1235}")
    }

    @Test func everyVerbParses() throws {
        // One minimal line a verb, so a new verb without a test here shows up.
        let minimal: [Verb: String] = [
            .maps: "maps", .read: "read 1 1", .write: "write 1 --u8 1", .copy: "copy 1 2 3",
            .search: "search --u8 1", .dump: "dump -o d", .restore: "restore d", .core: "core -o c",
            .diff: "diff d", .scan: "scan --state s --changed", .monitor: "monitor 1 4 --count 1",
            .backtrace: "backtrace",
            .regs: "regs",
            .symbol: "symbol [heap]",
            .break: "break sym:tick", .watch: "watch 0x10 8 --access", .delete: "delete 1",
            .wait: "wait --timeout 5", .step: "step", .finish: "finish --thread 7",
        ]
        for verb in Verb.allCases {
            let text = try #require(minimal[verb], "no minimal line for \(verb)")
            #expect(try verbCall(text).verb == verb)
            #expect(try parse(text).verbName == verb.rawValue)
        }
    }

    @Test func letAssigns() throws {
        guard case .assign(let name, let e) = try parse("let marker_1 = 0x10") else {
            Issue.record("not let")
            return
        }
        #expect(name == "marker_1")
        #expect(show(e) == "int(16)")
        // A bare verb after '=' is a call, as in `let m = search …`.
        guard case .assign(_, let call) = try parse(#"let m = search --string "VMIO" --nth 2"#) else {
            Issue.record("not let")
            return
        }
        #expect(show(call) == "{search --nth=2 --string=VMIO}")
        #expect(try expression("read $m 8 --format u64") == "{read $m 8 --format=u64}")
        #expect(try parse("let _x = 1").verbName == "let")
    }

    @Test func expectWithEveryOperator() throws {
        for op in Comparison.allCases {
            guard case .expect(let l, let parsedOp, let r) = try parse("expect $a \(op.rawValue) 5") else {
                Issue.record("not expect: \(op)")
                continue
            }
            #expect(parsedOp == op)
            #expect(show(l) == "$a@8")
            #expect(r.map(show) == "int(5)")
        }
        // Without spaces, and with parentheses and strings holding operator characters.
        guard case .expect(let l, let op, let r) = try parse(#"expect (read $m 4 --format str)=="a<=b""#) else {
            Issue.record("not expect")
            return
        }
        #expect(show(l) == "{read $m 4 --format=str}")
        #expect(op == .equal)
        #expect(r.map(show) == #"str("a<=b")"#)
        // `>=` is one operator, not `>` then `=`.
        guard case .expect(_, .greaterOrEqual, let right?) = try parse("expect $a >= -1") else {
            Issue.record("not >=")
            return
        }
        #expect(show(right) == "(-@14 int(1))")
        // A lone expression is a truth test.
        guard case .expect(let only, nil, nil) = try parse("expect $ok") else {
            Issue.record("not a truth test")
            return
        }
        #expect(show(only) == "$ok@8")
        // A comment after an expectation is dropped.
        guard case .expect(_, .notEqual, let r2?) = try parse("expect $a != 0 # never zero") else {
            Issue.record("comment")
            return
        }
        #expect(show(r2) == "int(0)")
    }

    @Test func stopContEchoSleep() throws {
        guard case .stop = try parse("stop") else { Issue.record("stop"); return }
        guard case .cont(wait: false) = try parse("  cont  # go on") else { Issue.record("cont"); return }
        guard case .cont(wait: true) = try parse("cont --wait") else { Issue.record("cont --wait"); return }
        #expect(try parse("stop").verbName == "stop" && parse("cont").verbName == "cont")
        guard case .echo(let words) = try parse(#"echo the value is $v "two  spaces" ${name}x"#) else {
            Issue.record("echo")
            return
        }
        #expect(words.map(\.text) == ["the", "value", "is", "$v", "two  spaces", "${name}x"])
        #expect(words.map(\.column) == [6, 10, 16, 19, 22, 36])
        #expect(words.map(\.quoted) == [false, false, false, false, true, false])
        guard case .echo(let none) = try parse("echo") else { Issue.record("bare echo"); return }
        #expect(none.isEmpty)

        let durations: [(String, Duration)] = [
            ("100ms", .milliseconds(100)), ("2s", .seconds(2)), ("1.5s", .milliseconds(1500)),
            ("0.5", .milliseconds(500)), ("250us", .microseconds(250)), ("0", .zero),
        ]
        for (text, want) in durations {
            guard case .sleep(let d) = try parse("sleep \(text)") else {
                Issue.record("sleep \(text)")
                continue
            }
            #expect(d == want, "sleep \(text)")
        }
        #expect(try parse("sleep 1s").verbName == "sleep")
    }

    @Test func durationsParse() {
        #expect(parseDuration("300ms") == .milliseconds(300))
        #expect(parseDuration("86400s") == .seconds(86400))
        for bad in ["", "ms", "-1s", "1 s", "5parsecs", "1h", "86401", "inf", "nan"] {
            #expect(parseDuration(bad) == nil, "\(bad)")
        }
    }

    @Test func quotedStringsAndEscapes() throws {
        guard case .echo(let words) = try parse(#"echo "a\"b" "back\\slash" "tab\there" "nl\nx" "nul\0""#) else {
            Issue.record("echo")
            return
        }
        #expect(words.map(\.text) == ["a\"b", "back\\slash", "tab\there", "nl\nx", "nul\0"])
        #expect(try expression(#""say \"hi\" # not a comment""#) == #"str("say \"hi\" # not a comment")"#)
        #expect(try expression(#""a\"b # c""#) == #"str("a\"b # c")"#)
        #expect(try expression(#""""#) == #"str("")"#)
        // An escaped quote does not end the string an expectation's operator is looked for in.
        guard case .expect(let l, .equal, let r?) = try parse(#"expect "x\"==" == "x\"==""#) else {
            Issue.record("expect with escaped quotes")
            return
        }
        #expect(show(l) == #"str("x\"==")"# && show(r) == #"str("x\"==")"#)
        // Nor the parenthesised group it is in.
        #expect(try expression(#"("a\")b")"#) == #"str("a\")b")"#)
    }
}

// MARK: - Expressions

@Suite struct ParserExpressionTests {
    @Test func arithmeticAndPrecedence() throws {
        #expect(try expression("$x+0x10*2") == "($x@9 +@11 (int(16) *@16 int(2)))")
        #expect(try expression("-5") == "(-@9 int(5))")
        #expect(try expression("1+2*3") == "(int(1) +@10 (int(2) *@12 int(3)))")
        #expect(try expression("(1+2)*3") == "((int(1) +@11 int(2)) *@14 int(3))")
        #expect(try expression("10 - 2 - 3") == "((int(10) -@12 int(2)) -@16 int(3))")
        #expect(try expression("4096+16") == "(int(4096) +@13 int(16))")
        #expect(try expression("0x10-4") == "(int(16) -@13 int(4))")
        #expect(try expression("-2*-3") == "((-@9 int(2)) *@11 (-@12 int(3)))")
        #expect(try expression("--5") == "(-@9 (-@10 int(5)))")
        #expect(try expression("1.5") == "double(1.5)")
        #expect(try expression("1_000") == "int(1000)")
        #expect(try expression("4K") == "int(4096)")
        #expect(try expression("  7  ") == "int(7)")
        // A number ends at its operator (a float's exponent sign is its own).
        #expect(try expression("1.5e-3+2") == "(double(0.0015) +@15 int(2))")
        #expect(try expression("0x1e+5") == "(int(30) +@13 int(5))")
        #expect(try expression("1+2+3") == "((int(1) +@10 int(2)) +@12 int(3))")
    }

    @Test func variables() throws {
        #expect(try expression("$name") == "$name@9")
        #expect(try expression("${name}") == "$name@9")
        #expect(try expression("${a}+${b_2}") == "($a@9 +@13 $b_2@14)")
        #expect(try expression("$m-0x10") == "($m@9 -@11 int(16))")
    }

    @Test func fieldsOfARecord() throws {
        #expect(try expression("$hit.pc") == "$hit@9.pc@14")
        #expect(try expression("$hit.rdi+16") == "($hit@9.rdi@14 +@17 int(16))")
        #expect(try expression("${r}.rsp") == "$r@9.rsp@14")
        // A dot not followed by a name is not a field.
        #expect(throws: ScriptError.self) { try expression("$hit.") }
        #expect(throws: ScriptError.self) { try expression("$hit.5") }
        #expect(show(try verbCall("read $hit.rdi 16")) == "{read $hit.rdi 16}")
        #expect(show(try verbCall("break sym:tick --hardware")) == "{break sym:tick --hardware}")
        #expect(show(try verbCall("wait --timeout 2")) == "{wait --timeout=2}")
    }

    @Test func parenthesisedCalls() throws {
        #expect(try expression("(read $a 8 --format u64) + 1") == "({read $a 8 --format=u64} +@34 int(1))")
        #expect(try expression(#"(search --string "VMIO" --nth 2)"#) == "{search --nth=2 --string=VMIO}")
        #expect(try expression("((read $a 1 --format u8))") == "{read $a 1 --format=u8}")
        #expect(try expression("(read (search --u8 1) 1)") == "{read (search --u8 1) 1}")
    }

    @Test func addressForms() throws {
        #expect(try expression("[heap]+0x10") == "region([heap])+0x10@9")
        #expect(try expression("[stack]") == "region([stack])@9")
        #expect(try expression("libc.so.6+0x10") == "region(libc.so.6)+0x10@9")
        #expect(try expression("ld-linux-x86-64.so.2+0x10") == "region(ld-linux-x86-64.so.2)+0x10@9")
        #expect(try expression("libstdc++.so.6+0x10") == "region(libstdc++.so.6)+0x10@9")
        #expect(try expression("sym:counter") == "sym(counter)@9")
        #expect(try expression("sym:libc.so.6:printf+4") == "sym(libc.so.6:printf)+0x4@9")
        #expect(try expression("[heap]+0x10-4") == "region([heap])+0x10-0x4@9")
        // An operator after the word belongs to the expression.
        #expect(try expression("[heap] + $off") == "(region([heap])@9 +@16 $off@18)")
        #expect(try expression("[heap]+$off") == "(region([heap])@9 +@15 $off@16)")
        #expect(try expression("sym:counter*2") == "(sym(counter)@9 *@20 int(2))")
    }

    @Test func bytesAndStrings() throws {
        #expect(try expression(#"x"de ad""#) == "bytes(dead)")
        #expect(try expression(#"x"DEADBEEF""#) == "bytes(deadbeef)")
        #expect(try expression(#"x"de:ad""#) == "bytes(dead)")
        #expect(try expression(#""abc""#) == #"str("abc")"#)
        #expect(try expression(#""a" + "b""#) == #"(str("a") +@13 str("b"))"#)
        #expect(try expression(#"x"01" + x"02""#) == "(bytes(01) +@15 bytes(02))")
    }
}

// MARK: - Errors

@Suite struct ParserErrorTests {
    /// Each bad line with its exact message.
    static let cases: [(String, String)] = [
        (
            "frob 1",
            "line 1:1: unknown command 'frob' (expected maps, read, write, copy, search, dump, restore, diff, scan, monitor, core, backtrace, regs, symbol, break, watch, delete, wait, step, finish, let, expect, stop, cont, echo, sleep)"
        ),
        (
            "  Read 1 2",
            "line 1:3: unknown command 'Read' (expected maps, read, write, copy, search, dump, restore, diff, scan, monitor, core, backtrace, regs, symbol, break, watch, delete, wait, step, finish, let, expect, stop, cont, echo, sleep)"
        ),
        (
            "read 0x10 8 --bogus",
            "line 1:13: read has no option --bogus (it takes --attach-timeout, --best-effort, --force, --format, "
                + "--no-sync, --output, --skip-faults, --stop, --words)"
        ),
        ("maps --json", "line 1:6: maps has no option --json (it takes --sizes)"),
        ("regs --depth 3", "line 1:6: regs has no option --depth (it takes --attach-timeout, --thread)"),
        ("read 0x10", "line 1:10: read needs LEN"),
        ("read", "line 1:5: read needs ADDR LEN"),
        ("copy 1:0x10 2:0x20", "line 1:19: copy needs LEN"),
        ("dump", "line 1:5: dump needs -o DIR"),
        ("dump /tmp/d", "line 1:6: unexpected argument '/tmp/d': dump takes no arguments"),
        ("read 0x10 8 --format u8 --format u16", "line 1:25: --format given twice"),
        (
            "read 0x10 8 --nth 2",
            "line 1:13: read has no option --nth (it takes --attach-timeout, --best-effort, --force, --format, "
                + "--no-sync, --output, --skip-faults, --stop, --words)"
        ),
        ("read 0x10 8 9", "line 1:13: unexpected argument '9': read takes ADDR LEN"),
        ("maps extra", "line 1:6: unexpected argument 'extra': maps takes no arguments"),
        ("write 0x10 0x20 --u8 1", "line 1:12: unexpected argument '0x20': write takes ADDR"),
        ("write 0x10 --hex", "line 1:12: --hex needs a value"),
        ("search --max 3 --max 4", "line 1:16: --max given twice"),
        ("let x 5", "line 1:6: expected '=' after let x"),
        ("let", "line 1:1: let needs a name: let NAME = EXPR"),
        ("let x =", "line 1:8: expected an expression after '='"),
        ("let 9x = 5", "line 1:5: '9x' is not a name (letters, digits, _)"),
        ("let a-b = 5", "line 1:5: 'a-b' is not a name (letters, digits, _)"),
        ("let $x = 5", "line 1:5: '$x' is not a name (letters, digits, _)"),
        ("let x = (1 + 2", "line 1:9: unbalanced '('"),
        ("let x = 1 + 2)", "line 1:14: unbalanced ')'"),
        ("let x = (read 0x10 8", "line 1:9: unbalanced '('"),
        ("expect (1 == 2", "line 1:8: unbalanced '('"),
        (#"echo "abc"#, "line 1:6: unterminated string"),
        (#"let s = "abc"#, "line 1:9: unterminated string"),
        (#"echo "a\qb""#, #"line 1:8: unknown escape \q"#),
        (#"let s = "\x41""#, #"line 1:10: unknown escape \x"#),
        ("sleep 5parsecs", "line 1:7: '5parsecs' is not a duration (like 100ms, 2s, 0.5)"),
        ("sleep -1s", "line 1:7: '-1s' is not a duration (like 100ms, 2s, 0.5)"),
        ("sleep", "line 1:1: sleep takes one duration: sleep 100ms, sleep 2s"),
        ("sleep 1s 2s", "line 1:1: sleep takes one duration: sleep 100ms, sleep 2s"),
        ("expect 1 ==", "line 1:12: expected an expression after =="),
        ("expect $a <=   # nothing", "line 1:13: expected an expression after <="),
        ("expect", "line 1:1: expect needs an expression: expect EXPR OP EXPR"),
        ("let x = 12abc", "line 1:9: '12abc' is not a number"),
        ("expect $a == 0x10zz", "line 1:14: '0x10zz' is not a number"),
        ("let x = $", "line 1:9: expected a name after $"),
        ("let x = ${abc", "line 1:9: unterminated ${"),
        (#"let x = x"zz""#, #"line 1:9: x"…" must hold hex bytes"#),
        (#"let x = x"abc""#, #"line 1:9: x"…" must hold hex bytes"#),
        ("let x = 1 +", "line 1:12: expected a value"),
        ("let x = 5 5", "line 1:11: unexpected '5'"),
        (#"let x = "a" "b""#, #"line 1:13: unexpected '"'"#),
        ("let x = *5", "line 1:9: unexpected '*'"),
        ("expect $a = 5", "line 1:11: unexpected '='"),
        ("stop now", "line 1:6: stop takes no arguments"),
        ("cont 1", "line 1:6: cont takes only --wait"),
    ]

    @Test(arguments: cases)
    func badLine(_ text: String, _ message: String) {
        #expect(parseError(text) == message, "\(text)")
    }

    @Test func theLineNumberIsTheOneGiven() {
        #expect(parseError("frob", line: 42)?.hasPrefix("line 42:1: unknown command 'frob'") == true)
        #expect(parseError("read 0x10 8 9", line: 7) == "line 7:13: unexpected argument '9': read takes ADDR LEN")
    }

    @Test func errorsCarryBadInputStatus() {
        do {
            _ = try Parser.parse("frob", line: 3)
            Issue.record("parsed")
        } catch {
            #expect(error.line == 3 && error.column == 1)
            #expect(error.status == .badInput)
            #expect(error.message.hasPrefix("unknown command 'frob'"))
        }
    }
}
