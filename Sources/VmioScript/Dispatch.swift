import Glibc
import VmIO
import VmioCommands
import VmioPtrace

/// What each statement does; a verb runs its shared command.
extension Interpreter {
    func perform(_ statement: Statement, parser: Parser) throws -> Outcome {
        var o = Outcome()
        switch statement {
        case .empty: break
        case .verb(let call):
            o = try run(call, parser: parser)
        case .assign(let name, let expression):
            let value = try evaluate(expression, parser: parser)
            variables[name] = value
            // An address is a "0x…" string in JSON, as everywhere; other integers are numbers.
            let isAddress = denotesAddress(expression)
            if isAddress { addressNames.insert(name) } else { addressNames.remove(name) }
            o.json = [("name", .string(name)), ("value", isAddress ? value.addressJSON : value.json)]
            o.value = value
        case .expect(let left, let op, let right):
            let l = try evaluate(left, parser: parser)
            // Addresses as "0x…" strings, as in `let`.
            o.json = [("left", denotesAddress(left) ? l.addressJSON : l.json)]
            if let op, let right {
                let r = try evaluate(right, parser: parser)
                o.json += [("op", .string(op.rawValue)), ("right", denotesAddress(right) ? r.addressJSON : r.json)]
                let holds = try compare(l, op, r, line: parser.line)
                o.json.append(("holds", .bool(holds)))
                if !holds {
                    o.status = .badInput
                    o.message = "expectation failed: \(l) \(op.rawValue) \(r)"
                }
            } else {
                let holds = truth(l)
                o.json.append(("holds", .bool(holds)))
                if !holds {
                    o.status = .badInput
                    o.message = "expectation failed: \(l) is not true"
                }
            }
        case .stop:
            try target.stop()
            o.json = [("stopped", .array(target.stoppedThreads.map { .int(Int64($0)) }))]
            o.text = ["stopped \(counted(target.stoppedThreads.count, "thread")) of pid \(target.pid)"]
        case .cont(let wait):
            // The target runs free: no breakpoint or watchpoint may stay in it.
            if let cleanup = endTraps() {
                o.text = ["breakpoints and watchpoints removed: \(cleanup)"]
                guard cleanup.verified else {
                    o.status = .badInput
                    o.message = "\(cleanup)"
                    return o
                }
            }
            // Killed or exited before this line (its end reported already, for a program of
            // `run`); one that ends right after it is let go ran on, as asked.
            let endedBefore = programEnd != nil || !ProcFS.isAlive(target.pid)
            target.resume()
            guard wait else {
                guard !endedBefore else {
                    o.status = .targetGone
                    o.message = "pid \(target.pid) has ended: nothing runs on"
                    o.json = [("running", .bool(false))]
                    break
                }
                o.json = [("running", .bool(true))]
                o.text.append("pid \(target.pid) runs on")
                break
            }
            // Until the process ends; its end is reported as an event, once.
            waitForEnd()
            o.json = [("running", .bool(false))]
        case .echo(let words):
            let line = try words.map { try interpolate($0, parser: parser) }.joined(separator: " ")
            o.text = [line]
            o.json = [("text", .string(line))]
        case .sleep(let duration):
            let c = duration.components
            var ts = timespec(tv_sec: Int(c.seconds), tv_nsec: Int(c.attoseconds / 1_000_000_000))
            var left = timespec()
            // A fatal signal while traps are set is only recorded: it ends the sleep.
            while nanosleep(&ts, &left) != 0 && errno == EINTR && context.traps.takeInterruption() == nil { ts = left }
            o.json = [("seconds", .double(duration.inSeconds))]
        }
        return o
    }

    /// Runs a verb: its words, each value worked out, parsed by its command's own definition
    /// (as the command line's are), then the command run on the session's targets.
    func run(_ call: VerbCall, parser: Parser) throws -> Outcome {
        // The targets may have mapped or unmapped memory since the last command.
        targets.beginCommand()
        _ = try targets.target(target.pid)
        let (on, words) = try commandWords(call, parser: parser)
        let context = self.context.with(pid: on.pid)
        guard call.verb == .search || call.verb == .scan, let nthWord = call.option("--nth") else {
            return try parses.parse(call.verb.command, words: words).run(in: context)
        }
        // (search … --nth N) gives the Nth hit, (scan … --nth N) the Nth candidate.
        let nth = try count(nthWord, parser: parser, what: "--nth")
        guard nth >= 1 else { throw ScriptError(line: parser.line, column: call.column, "--nth counts from 1") }
        if call.verb == .scan {
            var scan = try ScanCommand.parse(words: words)
            scan.list = max(scan.list, Int(clamping: nth))
            var (outcome, report) = try scan.scan(in: context)
            guard report.listed.count >= nth else {
                throw ScriptError(
                    line: parser.line, column: call.column,
                    "scan has \(counted(report.candidates, "candidate")), not \(nth)")
            }
            outcome.value = .int(Int128(report.listed[Int(nth) - 1].address))
            return outcome
        }
        var search = try SearchCommand.parse(words: words)
        search.max = max(search.max, Int(clamping: nth))
        var (outcome, report) = try search.search(in: context)
        guard report.hits.count >= nth else {
            throw ScriptError(
                line: parser.line, column: call.column, "search found \(counted(report.hits.count, "hit")), not \(nth)")
        }
        outcome.value = .int(Int128(report.hits[Int(nth) - 1].address))
        return outcome
    }
}
