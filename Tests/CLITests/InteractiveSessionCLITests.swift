// Issue 12, "Friction to remove": `session PID` with its standard input on a terminal is
// interactive: a prompt on stderr, `help` lists the verbs, a line that fails does not end
// the session; `quit` or Ctrl-D does. Scripts (a file, a pipe) keep stopping at their first
// failure.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct InteractiveSessionCLITests {
    /// The tool with the slave side of a new pseudo-terminal as its standard input, output
    /// and error; `input` typed at once. Returns what the terminal showed (without `\r`)
    /// and the exit status, once it ended.
    private func session(_ holder: FixtureProcess, typing input: String) throws -> (text: String, status: Int32) {
        let (master, slave) = try openPseudoTerminal()
        defer { close(master) }
        let process = Process()
        process.executableURL = Fixtures.toolPath
        process.arguments = ["session", holder.pidArg]
        let terminal = FileHandle(fileDescriptor: slave, closeOnDealloc: false)
        process.standardInput = terminal
        process.standardOutput = terminal
        process.standardError = terminal
        try process.run()
        close(slave)
        let drain = DrainThread(fd: master)
        _ = input.withCString { write(master, $0, strlen($0)) }
        let ended = waitUntil(timeout: 30) { !process.isRunning }
        if !ended { process.terminate() }
        try #require(ended, "the session did not end")
        process.waitUntilExit()
        let text = String(decoding: drain.result(timeout: 5), as: UTF8.self).replacingOccurrences(of: "\r", with: "")
        return (text, process.terminationStatus)
    }

    @Test func aPromptHelpAndFailuresThatDoNotEndIt() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        let typed = [
            "help", "frob 1", "expect 1 == 2", "echo still here",
            "expect (read \(hx(buf + 0x100)) 16 --format str) == \"VMIO-MARKER-0001\"", "echo marker ok", "quit",
            "echo never",
        ]
        let (text, status) = try session(holder, typing: typed.joined(separator: "\n") + "\n")
        #expect(text.contains("vmio-ptrace \(holder.pid)> "), "a prompt: \(text)")
        for verb in [
            "maps", "read", "write", "copy", "search", "dump", "restore", "diff", "scan", "monitor", "core",
            "backtrace",
            "regs", "symbol",
        ] {
            let entry = verb.padding(toLength: 10, withPad: " ", startingAt: 0)
            #expect(text.contains(entry), "help lists \(verb): \(text)")
        }
        #expect(text.contains("cont --wait") && text.contains("quit"), "\(text)")
        // Lines are counted as typed, help included.
        #expect(text.contains("line 2:1: unknown command 'frob'"), "\(text)")
        #expect(text.contains("line 3:") && text.contains("expectation failed: 1 == 2"), "\(text)")
        // The terminal echoes what was typed at once; what the session prints follows a prompt.
        #expect(text.contains("> still here\n") && text.contains("> marker ok\n"), "it went on: \(text)")
        #expect(!text.contains("> never\n"), "quit ends it: \(text)")
        #expect(status == 1, "the first failure's status")
        #expect(try holder.send("ping") == "pong", "the holder runs on")
    }

    /// Ctrl-D (the end of input on a terminal) ends it; nothing failed: exit 0.
    @Test func controlDEndsIt() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let (text, status) = try session(holder, typing: "echo hello\n\u{04}")
        #expect(text.contains("> hello\n"), "\(text)")
        #expect(status == 0, "\(text)")
    }

    /// Not on a terminal: a script on standard input (a pipe) or in a file stops at its
    /// first failure, as before.
    @Test func scriptsStillStopAtTheFirstFailure() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let script = try SessionScript(["expect 1 == 2", "echo not reached"])
        let scripted = try Tool.run("session", holder.pidArg, script.path)
        #expect(scripted.exited(1) && !scripted.stdoutText.contains("not reached"), "\(scripted)")
        let piped = try Tool.runProgram(
            "/bin/sh", ["-c", "printf 'expect 1 == 2\\necho not reached\\n' | '\(Tool.path)' session \(holder.pid)"])
        #expect(piped.exited(1) && !piped.stdoutText.contains("not reached"), "\(piped)")
        #expect(!piped.stderr.contains("vmio-ptrace \(holder.pid)> "), "no prompt: \(piped)")
    }
}
