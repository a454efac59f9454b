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

    /// Runs `script` (a file, or standard input for nil or "-") against `target`: the
    /// session's exit status, and how the target ended if that was seen (`ownsProcess`: the
    /// target is this process's child, started by `run`, whose end is watched and reported).
    /// Standard input on a terminal is an interactive session: a prompt, `help`, and a line
    /// that fails does not end it.
    /// A fatal signal that came while breakpoints or watchpoints were set is `interrupted`:
    /// the session removed them and stopped; the caller lets the target go, then dies of it.
    func run(
        _ script: String?, on target: Target, ownsProcess: Bool = false
    ) throws -> (status: ExitStatus, end: ProcessEnd?, interrupted: Int32?) {
        attach.apply(to: target)
        let text = try Self.readScript(script)
        let interactive = text == nil && isatty(STDIN_FILENO) == 1 && !json
        let interpreter = Interpreter(
            target: target, json: json, keepGoing: keepGoing || interactive, output: Self.printFlushed,
            diagnostics: { printError($0) })
        interpreter.ownsProcess = ownsProcess
        let status: ExitStatus
        if let text {
            status = interpreter.run(script: text)
        } else if interactive {
            status = interpreter.run(lines: Self.prompting(target.pid))
        } else {
            status = interpreter.run(lines: Console.nextInputLine)
        }
        return (status, interpreter.programEnd, interpreter.interruption)
    }

    /// One line of the session's results on standard output, flushed at once (a program may
    /// be waiting for it on the other end of a pipe).
    static func printFlushed(_ line: String) {
        print(line)
        fflush(nil)
    }

    /// The lines of an interactive session: each read after a prompt on standard error;
    /// `help` answered here; `quit`, `exit` or the end of input (Ctrl-D) ends it.
    static func prompting(_ pid: Int32) -> () -> String? {
        printError("vmio-ptrace: session on pid \(pid); help lists the commands, quit or Ctrl-D ends it")
        return {
            while true {
                StandardError.write("vmio-ptrace \(pid)> ")
                guard let line = Console.nextInputLine() else {
                    printError("")
                    return nil
                }
                switch line.trimmingCharacters(in: .whitespaces) {
                case "help":
                    print(help)
                    return ""  // still a line of the session: the next one's number counts it
                case "quit", "exit": return nil
                default: return line
                }
            }
        }
    }

    /// What `help` prints in an interactive session: every verb with its command's abstract,
    /// then the session's own statements.
    static var help: String {
        let verbs = Verb.allCases.map { ($0.rawValue, $0.command.configuration.abstract) }
        let own = [
            ("let", "let NAME = EXPR: a value, used as $NAME"),
            ("expect", "expect EXPR [OP EXPR]: check a value (== != < <= > >=)"),
            ("stop", "stop every thread of the target"), ("cont", "let it run on; cont --wait: until it ends"),
            ("echo", "print words ($name interpolated)"), ("sleep", "sleep 100ms, sleep 2s"),
            ("help", "this list"), ("quit", "end the session (also Ctrl-D)"),
        ]
        let lines = (verbs + own).map { name, what in name.padding(toLength: 10, withPad: " ", startingAt: 0) + what }
        return (lines + ["Verbs take the command line's arguments and options, less the PID and --json."])
            .joined(separator: "\n")
    }

    /// The text of the script file `script` (nil for standard input: nil or "-"). Read with
    /// read(2) to EOF, so an empty character device such as /dev/null is an empty script.
    static func readScript(_ script: String?) throws -> String? {
        guard let script, script != "-" else { return nil }
        guard let handle = FileHandle(forReadingAtPath: script), let data = try? handle.readToEnd() ?? Data() else {
            throw CommandError.badInput("cannot read script \(script)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            // Name the first line that is not UTF-8, as a broken line is named.
            let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            let line = (lines.firstIndex { String(data: Data($0), encoding: .utf8) == nil } ?? 0) + 1
            throw CommandError.badInput("script \(script), line \(line): not UTF-8 text")
        }
        return text
    }
}

struct Session: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a scripted debugging session against a process, in one attach.",
        discussion: """
            One command a line: maps, read, write, copy, search, dump, restore, diff, scan, monitor, core, backtrace, \
            regs, \
            symbol (with the same options as the commands, less the PID); break, watch, delete, wait, \
            step, finish (breakpoints and watchpoints: wait gives the next event, read as $hit.pc, \
            $hit.rdi…; every trap is removed at cont and at the end, on every path), let NAME = EXPR, \
            expect EXPR OP EXPR (== != < <= > >=), stop, cont [--wait], echo, sleep, and # comments. \
            A script file is checked whole before it runs; standard input runs line by line. \
            A failed command or expectation ends the session with its line and the exit status \
            of the failure (1 for an expectation), unless --keep-going. Standard input on a \
            terminal is an interactive session: a prompt on stderr, help lists the verbs, a failing \
            line does not end it, quit or Ctrl-D does. The target is resumed \
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
            if let warning = reachedThroughThreadWarning(target, pid: pid.value) {
                printError("vmio-ptrace: warning: " + warning)
            }
            let result = try options.run(script, on: target)
            if let signal = result.interrupted {
                target.resume()
                TrapSession.reraise(signal)
            }
            return result.status
        }
    }
}
