import ArgumentParser
import Foundation
import Glibc
import VmIO
import VmioCommands
import VmioPtrace
import VmioScript

/// What `session` and `run` share: the script options and the loop that runs them.
struct ScriptOptions: ParsableArguments {
    @Flag(help: "Print one JSON object a command (JSON lines), flushed after each, then a summary.")
    var json = false

    @Flag(help: "Run on after a failed command and list every failure at the end.")
    var keepGoing = false

    @OptionGroup var attach: AttachOptions

    /// Runs `script` (a file, or standard input for nil or "-") against `target`.
    func run(_ script: String?, on target: Target) throws -> ExitStatus {
        attach.apply(to: target)
        let interpreter = Interpreter(
            target: target, json: json, keepGoing: keepGoing,
            output: { line in
                print(line)
                fflush(nil)
            },
            diagnostics: { printError($0) })
        if let text = try Self.readScript(script) {
            return interpreter.run(script: text)
        }
        return interpreter.run(lines: { Swift.readLine(strippingNewline: true) })
    }

    /// The text of the script file `script` (nil for standard input: nil or "-"). Read with
    /// read(2) to EOF, so an empty character device such as /dev/null is an empty script.
    static func readScript(_ script: String?) throws -> String? {
        guard let script, script != "-" else { return nil }
        guard let handle = FileHandle(forReadingAtPath: script), let data = try? handle.readToEnd() ?? Data(),
            let text = String(data: data, encoding: .utf8)
        else { throw CommandError.badInput("cannot read script \(script)") }
        return text
    }
}

struct Session: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a scripted debugging session against a process, in one attach.",
        discussion: """
            One command a line: maps, read, write, copy, search, dump, restore, core, backtrace, regs, \
            symbol (with the same options as the commands, less the PID), let NAME = EXPR, \
            expect EXPR OP EXPR (== != < <= > >=), stop, cont, echo, sleep, and # comments. \
            A script file is checked whole before it runs; standard input runs line by line. \
            A failed command or expectation ends the session with its line and the exit status \
            of the failure (1 for an expectation), unless --keep-going. The target is resumed \
            and let go at the end. With --json each command prints \
            {line, verb, ok, status, result | error}, then {summary}.
            """
    )

    @Argument(help: "The target's pid, or `self`.")
    var pid: PID

    @Argument(help: "The script file; - or nothing reads standard input.")
    var script: String?

    @OptionGroup var options: ScriptOptions

    func run() throws {
        try runReporting(json: options.json) {
            let target = try Target(pid: pid.value)
            defer { target.resume() }
            return try options.run(script, on: target)
        }
    }
}
