// run-session PID SCRIPT: runs SCRIPT, lines of the session language (README.md,
// "Sessions"), against process PID from Swift, and exits with the session's status.
import Glibc
import VmioPtrace
import VmioScript

let words = Array(CommandLine.arguments.dropFirst())
guard words.count == 2, let pid = Int32(words[0]) else { fatalError("usage: run-session PID SCRIPT") }

do {
    let target = try Target(pid: pid)
    let interpreter = Interpreter(
        target: target, json: false, keepGoing: false, output: { print($0) },
        diagnostics: { print("run-session: \($0)") })
    // Every line is parsed before the first runs; a failed command ends the session.
    let status = interpreter.run(script: words[1])
    // Lets the target go (a `stop` in the script held it) and checks its run state.
    target.resume()
    print("\(interpreter.commandsRun) commands, status \(status.rawValue)")
    exit(status.rawValue)
} catch {
    print("run-session: \(error)")
    exit(1)
}
