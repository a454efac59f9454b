import ArgumentParser
import Foundation
import Glibc
import VmIO
import VmioCommands

@main
struct VmioPtraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vmio-ptrace",
        abstract: "Read, write and copy the memory of live processes, exactly and safely.",
        discussion: """
            Every access to a target may fault; a fault reports exactly how many bytes moved \
            and where it stopped. A target is never left stopped.

            Exit status: 0 everything moved; 1 bad input found at run time; 2 partial copy \
            (the count and the faulting address are printed); 3 permission refused (with the \
            reason); 4 target gone (or no such process); 64 malformed command line.
            """,
        version: vmioPtraceVersion,
        subcommands: [
            Maps.self, Read.self, Write.self, Copy.self, Dump.self, Restore.self, Diff.self, Search.self, Scan.self,
            Monitor.self, Backtrace.self,
            Core.self, Regs.self, Symbol.self, Watch.self, Break.self, Session.self, Run.self, Doctor.self, Demo.self,
        ]
    )

    /// Like the default, but a malformed command line is one line on stderr (with where to
    /// find the usage), not the usage block: scripts read one clear line and status 64. With
    /// `--json` the same error is also `{"error", "status"}` on stdout, as for every error.
    static func main() {
        // No subcommand is a malformed command line: the usage, on stderr, and status 64.
        if CommandLine.arguments.count == 1 {
            printError(helpMessage())
            Glibc.exit(ExitStatus.usage.rawValue)
        }
        let arguments = Array(CommandLine.arguments.dropFirst())
        let subcommand = arguments.first.flatMap { name in configuration.subcommands.first { $0._commandName == name } }
        // What the parser would let through (an option given twice) or blame on the wrong word
        // (a negative pid), checked against the subcommand's own definition first.
        if let subcommand, let misuse = CommandSyntax(of: subcommand).misuse(in: Array(arguments.dropFirst())) {
            refuse(misuse, topic: subcommand._commandName, json: arguments.contains("--json"))
        }
        var command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            refuse(
                oneLineMessage(fullMessage(for: error)), topic: subcommand?._commandName,
                json: arguments.contains("--json"))
        }
        do {
            try command.run()
        } catch let status as ExitCode {
            Glibc.exit(status.rawValue)  // already reported
        } catch {
            exit(withError: error)
        }
    }

    /// Ends a malformed command line: one line on stderr naming where the usage is (and the
    /// error object on stdout with `--json`), status 64.
    static func refuse(_ message: String, topic: String?, json: Bool) -> Never {
        let failure = CommandError.usage("\(message) (see: vmio-ptrace help\(topic.map { " " + $0 } ?? ""))")
        printError("vmio-ptrace: " + failure.message)
        if json { print(failure.json.rendered) }
        Glibc.exit(failure.exitStatus.rawValue)
    }
}
