import Glibc
import VmIO
import VmioCommands
import VmioPtrace

/// Runs the session language against one target, in one attach.
///
/// Each command's result goes to `output` as text, or — with `json` — as one JSON
/// object a command: `{"line", "verb", "ok", "status", "result" | "error"}`, flushed
/// after each line, so another program can drive a session through a pipe.
public final class Interpreter {
    /// The session's own target: every line without a `PID:` runs against it.
    public let target: Target
    /// The variables `let` has set, by name.
    public internal(set) var variables: [String: Value] = [:]
    /// The variables that hold an address (`let m = search …`): JSON shows them as `0x…` strings.
    var addressNames: Set<String> = []
    let json: Bool
    let keepGoing: Bool
    let output: (String) -> Void
    let diagnostics: (String) -> Void
    /// The target and the other processes named by `PID:ADDR`, each opened once.
    let targets: TargetPool
    /// What the shared commands run with.
    let context: CommandContext
    /// Each verb's parses so far: a line that differs from an earlier one only in its
    /// positional values costs no new parse.
    let parses = ParseCache()
    /// Failed commands so far: line, status, message.
    public private(set) var failures: [(line: Int, status: ExitStatus, message: String)] = []
    /// The same failures as printed on stderr, each naming its line and column.
    private var failureLines: [String] = []
    /// The commands run so far, failed ones included.
    public private(set) var commandsRun = 0
    /// The target is this process's child (`run`): its end is watched between commands,
    /// and its exit status or killing signal reported.
    public var ownsProcess = false
    /// How the target ended, once seen (reported once, as an event).
    public private(set) var programEnd: ProcessEnd?

    /// An interpreter for `target`: results to `output` (one JSON object a command with `json`), failures and warnings
    /// to `diagnostics`; with `keepGoing` a failed command does not end the session.
    public init(
        target: Target, json: Bool, keepGoing: Bool,
        output: @escaping (String) -> Void, diagnostics: @escaping (String) -> Void
    ) {
        self.target = target
        self.json = json
        self.keepGoing = keepGoing
        self.output = output
        self.diagnostics = diagnostics
        targets = TargetPool(target)
        context = CommandContext(
            pid: target.pid, targets: targets, streams: false, json: json, showsProgress: false,
            traps: SessionTraps(pid: target.pid), warn: { diagnostics("vmio-ptrace: warning: " + $0) })
    }

    deinit {
        // Nothing left in the target (a session that did not reach its end); the session's own
        // target is let go by its owner, the others here.
        context.traps.end()
        targets.resumeAll(except: target.pid)
    }

    /// A fatal signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE) received while breakpoints or
    /// watchpoints were set: the session stopped there and removed them; the caller lets the
    /// target go, then dies of it (`TrapSession.reraise`).
    public var interruption: Int32? { context.traps.interruption }

    // MARK: Running

    /// Parses every line first (a broken line stops the script before anything runs),
    /// then runs them. Returns the session's exit status.
    public func run(script: String) -> ExitStatus {
        let (statements, broken) = Self.parse(script: script)
        guard broken.isEmpty else {
            return Self.reportBroken(broken, json: json, output: output, diagnostics: diagnostics)
        }
        for (number, text, statement) in statements {
            if !execute(statement, line: number, text: text) && !keepGoing { break }
            if interrupted() { break }
        }
        return finish()
    }

    /// Every line of `script` parsed (line number, text, statement), and every line that does
    /// not parse.
    public static func parse(script: String) -> (statements: [(Int, String, Statement)], broken: [ScriptError]) {
        var statements: [(Int, String, Statement)] = []
        var broken: [ScriptError] = []
        for (i, text) in lines(of: script).enumerated() {
            do { statements.append((i + 1, text, try Parser.parse(text, line: i + 1))) } catch { broken.append(error) }
        }
        return (statements, broken)
    }

    /// Reports the broken lines of a script that will not run, as a session reports a failure
    /// (`line L:C: message` to `diagnostics`; with `json`, one object a line and the summary to
    /// `output`): the exit status of bad input. No target is needed: `run` checks its script
    /// before it starts the program.
    public static func reportBroken(
        _ broken: [ScriptError], json: Bool, output: (String) -> Void, diagnostics: (String) -> Void
    ) -> ExitStatus {
        let status = ExitStatus.badInput
        for e in broken {
            guard json else {
                diagnostics("vmio-ptrace: \(e)")
                continue
            }
            output(
                JSONValue.object([
                    ("line", .int(Int64(e.line))), ("verb", .string("parse")), ("ok", .bool(false)),
                    ("status", .int(Int64(status.rawValue))), ("error", .string(e.description)),
                ]).rendered)
        }
        if json { output(summary(commands: 0, failures: broken.map { ($0.line, status, $0.description) })) }
        return status
    }

    /// The lines of `script`, split at each line feed as a split on the Character `"\n"`
    /// would: byte by byte, where a line feed after a carriage return is no split (Swift
    /// counts the pair as one Character, which is not `"\n"`), and a line feed is otherwise
    /// always a Character of its own.
    static func lines(of script: String) -> [String] {
        var lines: [String] = []
        let bytes = Array(script.utf8)
        var start = 0
        for (i, byte) in bytes.enumerated() where byte == 0x0a && (i == 0 || bytes[i - 1] != 0x0d) {
            lines.append(String(decoding: bytes[start..<i], as: UTF8.self))
            start = i + 1
        }
        lines.append(String(decoding: bytes[start...], as: UTF8.self))
        return lines
    }

    /// Runs lines as they come (standard input, a pipe): each is parsed and run before the
    /// next is read. Returns the session's exit status.
    public func run(lines next: () -> String?) -> ExitStatus {
        var number = 0
        var announced = false
        while let text = next() {
            number += 1
            let statement: Statement
            do { statement = try Parser.parse(text, line: number) } catch {
                commandsRun += 1  // a line that does not parse is a command that failed
                report(line: number, verb: "parse", status: .badInput, message: error.description, result: nil)
                if keepGoing { continue }
                break
            }
            if !execute(statement, line: number, text: text) && !keepGoing { break }
            if interrupted() {
                announced = true
                break
            }
        }
        // The input may have ended because a fatal signal came while a line was awaited.
        if !announced { _ = interrupted() }
        return finish()
    }

    /// Whether a fatal signal came while traps were set (then the session ends here).
    func interrupted() -> Bool {
        guard let signal = context.traps.takeInterruption() else { return false }
        diagnostics("vmio-ptrace: \(ProcessEnd.signalName(signal)) received: the session ends")
        return true
    }

    /// Removes every breakpoint and watchpoint (`cont`, the session's end): the bytes put
    /// back and DR7 cleared on every thread, both read back. Nil when there were none; a
    /// failure when something could not be put back.
    func endTraps() -> TrapCleanup? {
        let processEnd = context.traps.processEnd
        guard let cleanup = context.traps.end() else { return nil }
        if let processEnd, ownsProcess, programEnd == nil { report(end: processEnd) }
        return cleanup
    }

    /// The final status: that of the first failure, or ok. With `keepGoing`, every failure
    /// is listed once more at the end.
    func finish() -> ExitStatus {
        _ = context.traps.takeInterruption()
        if let cleanup = endTraps() {
            if cleanup.verified {
                diagnostics("vmio-ptrace: breakpoints and watchpoints removed: \(cleanup)")
            } else {
                commandsRun += 1
                report(line: 0, verb: "end", status: .badInput, message: "\(cleanup)", result: nil)
            }
        }
        watchEnd()
        if keepGoing && failures.count > 0 {
            diagnostics("vmio-ptrace: \(failures.count) of \(counted(commandsRun, "command")) failed:")
            for f in failureLines { diagnostics("  " + f) }
        }
        if json { summary() }
        return failures.first?.status ?? .ok
    }

    /// The closing `{"summary": …}` object of `--json`.
    func summary() { output(Self.summary(commands: commandsRun, failures: failures)) }

    /// The closing object of `--json` for `commands` run and their `failures`.
    static func summary(commands: Int, failures: [(line: Int, status: ExitStatus, message: String)]) -> String {
        JSONValue.object([
            (
                "summary",
                .object([
                    ("commands", .int(Int64(commands))),
                    (
                        "failures",
                        .array(
                            failures.map {
                                .object([
                                    ("line", .int(Int64($0.line))), ("status", .int(Int64($0.status.rawValue))),
                                    ("error", .string($0.message)),
                                ])
                            })
                    ),
                    ("status", .int(Int64((failures.first?.status ?? .ok).rawValue))),
                ])
            )
        ]).rendered
    }

    /// Runs one statement; false when it failed.
    @discardableResult
    public func execute(_ statement: Statement, line: Int, text: String) -> Bool {
        if case .empty = statement { return true }
        watchEnd()
        defer { watchEnd() }
        commandsRun += 1
        let parser = Parser(line: line, text: text)
        // Failures name the line and the column where the command starts.
        let column = (parser.text.firstNonSpace ?? 0) + 1
        do {
            let outcome = try perform(statement, parser: parser)
            let failed = outcome.status != .ok
            report(
                line: line, column: column, verb: statement.verbName, status: outcome.status,
                message: failed ? (outcome.message ?? "failed") : nil, result: outcome,
                note: failed ? nil : outcome.message)
            return !failed
        } catch {
            let failure = CommandError(error)
            report(
                line: line, column: column, verb: statement.verbName, status: failure.exitStatus,
                message: failure.message, result: nil)
            return false
        }
    }

    // MARK: The process's end

    /// Reports the end of a child process (`run`) that nothing traces, once it has ended.
    func watchEnd() {
        // A wait saw the end (its event loop reaped the process): the traps end with it.
        if context.traps.processEnd != nil { _ = endTraps() }
        // Killed while held stopped: reaped here (its status is ours to report), then let go.
        if ownsProcess, programEnd == nil, target.isStopped, context.traps.session == nil,
            ProcessWatch.hasEnded(child: target.pid), let end = ProcessWatch.poll(child: target.pid)
        {
            target.resume()
            report(end: end)
            return
        }
        guard ownsProcess, programEnd == nil, !target.isStopped, let end = ProcessWatch.poll(child: target.pid)
        else { return }
        report(end: end)
    }

    /// Waits until the target has ended (`cont --wait`) and reports its end, unless it was
    /// reported already.
    func waitForEnd() {
        guard programEnd == nil else { return }
        report(end: ownsProcess ? ProcessWatch.wait(child: target.pid) : ProcessWatch.waitGone(target.pid))
    }

    /// `pid N exited with status 7` / `{"event": "exit", "pid", "status", "signal"}`.
    private func report(end: ProcessEnd) {
        programEnd = end
        guard json else { return output("pid \(target.pid) \(end)") }
        var status = JSONValue.null
        var signal = JSONValue.null
        if case .exited(let code) = end { status = .int(Int64(code)) }
        if case .killed(let number) = end { signal = .string(ProcessEnd.signalName(number)) }
        output(
            JSONValue.object([
                ("event", .string("exit")), ("pid", .int(Int64(target.pid))), ("status", status), ("signal", signal),
            ]).rendered)
    }

    func report(
        line: Int, column: Int = 1, verb: String, status: ExitStatus, message: String?, result: Outcome?,
        note: String? = nil
    ) {
        if let message, status != .ok || verb == "parse" {
            failures.append((line, status, message))
            failureLines.append(message.hasPrefix("line ") ? message : "line \(line):\(column): \(message)")
        }
        if json {
            var fields: [(String, JSONValue)] = [
                ("line", .int(Int64(line))), ("verb", .string(verb)),
                ("ok", .bool(status == .ok && verb != "parse")), ("status", .int(Int64(status.rawValue))),
            ]
            if let result, !result.json.isEmpty { fields.append(("result", .object(result.json))) }
            if let message, status != .ok || verb == "parse" { fields.append(("error", .string(message))) }
            output(JSONValue.object(fields).rendered)
        } else {
            for l in result?.text ?? [] { output(l) }
            if let note { diagnostics(note) }
            if message != nil, status != .ok || verb == "parse", let located = failureLines.last {
                diagnostics("vmio-ptrace: " + located)
            }
        }
    }
}
