// Every example command line of the README also runs as a session line (issue 12, bug 4):
// a session's verbs take exactly the command line's syntax, since both are parsed by the
// command's one definition. Each example runs both ways on a holder fixture (its pids
// replaced by the holder's) and must end the same way: the same exit status and the same
// message, and never a malformed line (64, or a session parse error).

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.serialized) struct ReadmeExamplesCLITests {
    /// The README's example lines (`vmio-ptrace VERB …` in its code blocks, without
    /// placeholders), split as the shell would, without `vmio-ptrace` and the comment.
    static let examples: [[String]] = {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
        let text = (try? String(contentsOf: readme, encoding: .utf8)) ?? ""
        let verbs: Set = [
            "maps", "read", "write", "copy", "search", "dump", "restore", "core", "backtrace", "regs", "diff", "scan",
            "monitor",
        ]
        var inCode = false
        var out: [[String]] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") {
                inCode.toggle()
                continue
            }
            guard inCode, line.hasPrefix("vmio-ptrace ") else { continue }
            let words = shellWords(String(line.prefix { $0 != "#" }))
            // The synopses (PID, ADDR, [--option]…) are not examples.
            // diff's sides are a dump and a pid, in either order.
            guard words.count > 2, verbs.contains(words[1]),
                words[2] == "1234" || words[2].hasPrefix("1234:") || (words[1] == "diff" && words.contains("1234"))
            else { continue }
            out.append(Array(words.dropFirst()))
        }
        return out
    }()

    /// Words as the shell splits them: blanks separate, '…' and "…" quote.
    static func shellWords(_ line: String) -> [String] {
        var words: [String] = [], word = "", quote: Character?, inWord = false
        for c in line {
            if let q = quote {
                if c == q { quote = nil } else { word.append(c) }
            } else if c == "'" || c == "\"" {
                quote = c
                inWord = true
            } else if c == " " {
                if inWord { words.append(word) }
                word = ""
                inWord = false
            } else {
                word.append(c)
                inWord = true
            }
        }
        if inWord { words.append(word) }
        return words
    }

    /// A word of a session line: quoted when it holds a blank.
    static func sessionWord(_ word: String) -> String {
        word.contains(" ") ? "\"" + word + "\"" : word
    }

    @Test func theReadmeHasAnExampleOfEveryVerb() {
        let verbs = Set(Self.examples.map { $0[0] })
        #expect(
            verbs == [
                "maps", "read", "write", "copy", "search", "dump", "restore", "core", "backtrace", "regs", "diff",
                "scan",
                "monitor",
            ])
    }

    @Test func everyExampleRunsAsASessionLineToo() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let dir = TempDir()
        for example in Self.examples {
            let words = example.map {
                $0.replacingOccurrences(of: "1234", with: holder.pidArg)
                    .replacingOccurrences(of: "5678", with: holder.pidArg)
                    .replacingOccurrences(of: "stack-dump", with: dir.sub("stack-dump"))
                    .replacingOccurrences(of: "chunk.bin", with: dir.sub("chunk.bin"))
                    .replacingOccurrences(of: "app.core", with: dir.sub("app.core"))
                    .replacingOccurrences(of: "counter.scan", with: dir.sub("counter.scan"))
            }
            // Files an example writes are removed before the next run, so both runs start alike.
            let clean = {
                for name in ["stack-dump", "chunk.bin", "chunk.bin.partial", "app.core", "counter.scan"] {
                    try? FileManager.default.removeItem(atPath: dir.sub(name))
                }
            }
            let commandLine = try Tool.run(words)
            clean()
            // The session runs on the pid; its verbs take the rest (copy keeps its PID:ADDR forms,
            // diff both its sides).
            let line = ([words[0]] + words.dropFirst(["copy", "diff"].contains(words[0]) ? 1 : 2)).map(Self.sessionWord)
                .joined(separator: " ")
            let script = dir.sub("s.vmio")
            try Data((line + "\n").utf8).write(to: URL(fileURLWithPath: script))
            let session = try Tool.run("session", holder.pidArg, script)
            #expect(commandLine.status != 64, "\(words): \(commandLine)")
            #expect(session.status == commandLine.status, "\(line): session \(session), command line \(commandLine)")
            if commandLine.status != 0 {
                // The same failure: the session names its line first.
                let message = commandLine.stderrLines.last ?? ""
                let sessionMessage = (session.stderrLines.last ?? "").replacingOccurrences(of: "line 1:1: ", with: "")
                #expect(sessionMessage == message, "\(line)")
            }
            clean()
            #expect(isFreeRunning(holder.pid), "\(line): the holder runs on")
        }
    }
}
