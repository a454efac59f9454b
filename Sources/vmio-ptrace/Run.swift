import ArgumentParser
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
            end the program is killed, or with --detach let go to run on. The session reads \
            --script, or standard input (the program's standard input is then /dev/null). \
            The exit status is the session's.
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
            _ = try ScriptOptions.readScript(script)  // refuse an unreadable script before starting anything
            let target = try Target.launchStopped(command, nullStdin: script == nil || script == "-")
            if !options.json {
                printError("vmio-ptrace: started \(command[0]) as pid \(target.pid), stopped at its first instruction")
            }
            defer {
                if detach {
                    target.resume()
                } else {
                    target.killAndReap()
                }
            }
            return try options.run(script, on: target)
        }
    }
}
