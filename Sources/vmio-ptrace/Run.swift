import ArgumentParser
import Glibc
import VmIO
import VmioCommands
import VmioPtrace
import VmioScript

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a program stopped at its first instruction, then run a session on it.",
        discussion: """
            The program starts traced and stopped before its first instruction, so a script can \
            read and patch it before it runs; `cont` lets it run, `stop` stops it again. At the \
            end, or when a signal such as SIGINT ends the tool, the program is killed; with --detach \
            it is let go to run on. The session reads \
            --script, or standard input (the program's standard input is then /dev/null); a \
            --script that cannot be read or has a broken line starts nothing. \
            The program's end (its exit status or the signal that killed it) is reported once, \
            as `pid N exited with status S` or, with --json, {event: "exit", pid, status, signal}; \
            `cont --wait` lets it run until it ends. With --json the first line is \
            {event: "started", pid, command}. The exit status is the session's.
            """
    )

    @Option(help: "The session script; without it, standard input.")
    var script: String?

    @Flag(help: "Let the program run on at the end instead of killing it.")
    var detach = false

    @OptionGroup var options: ScriptOptions

    @Argument(parsing: .postTerminator, help: "The program and its arguments, after --.")
    var command: [String] = []

    func validate() throws {
        guard !command.isEmpty else { throw ValidationError("give the program to run after --") }
    }

    func run() throws {
        try runReporting(json: options.json) {
            // An unreadable or broken script starts nothing.
            if let text = try ScriptOptions.readScript(script) {
                let broken = Interpreter.parse(script: text).broken
                guard broken.isEmpty else {
                    return Interpreter.reportBroken(
                        broken, json: options.json, output: ScriptOptions.printFlushed, diagnostics: { printError($0) })
                }
            }
            let target = try Target.launchStopped(command, nullStdin: script == nil || script == "-")
            // Ctrl-C ends the program with the tool, as the end of the script does (set before
            // the pid is announced, so that no signal sent on seeing it finds it unset).
            if !detach { target.killOnFatalSignal(true) }
            if options.json {
                // The pid first, so that a program driving the session knows what it runs.
                let started = JSONValue.object([
                    ("event", .string("started")), ("pid", .int(Int64(target.pid))),
                    ("command", .array(command.map { .string($0) })),
                ])
                print(started.rendered)
                fflush(nil)
            } else {
                printError("vmio-ptrace: started \(command[0]) as pid \(target.pid), stopped at its first instruction")
            }
            var ended = false
            defer {
                // A program whose end was reported is reaped: its pid may be another's now.
                if detach || ended {
                    target.killOnFatalSignal(false)
                    target.resume()
                } else {
                    target.killAndReap()
                }
            }
            let (status, end, interrupted) = try options.run(script, on: target, ownsProcess: true)
            ended = end != nil
            if let signal = interrupted {
                if detach || ended {
                    target.killOnFatalSignal(false)
                    target.resume()
                } else {
                    target.killAndReap()
                }
                TrapSession.reraise(signal)
            }
            return status
        }
    }
}
