// run-session PID SCRIPT: runs SCRIPT, lines of the session language (README.md,
// "Sessions"), against process PID from Swift, prints the integer variables it set, and
// exits with the session's status. Everything it names is in the products it imports.
import Glibc
import VmIO
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
    let status: ExitStatus = interpreter.run(script: words[1])
    // Lets the target go (a `stop` in the script held it) and checks its run state.
    target.resume()
    let variables: [String: Value] = interpreter.variables
    for (name, value) in variables.sorted(by: { $0.key < $1.key }) {
        if case .int(let number) = value { print("$\(name) = \(number)") }
    }
    print("\(interpreter.commandsRun) commands, status \(status.rawValue)")
    exit(status.rawValue)
} catch {
    print("run-session: \(error)")
    exit(1)
}
