import ArgumentParser
import Foundation
import Glibc
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
            Maps.self, Read.self, Write.self, Copy.self, Dump.self, Restore.self, Search.self, Backtrace.self,
            Regs.self, Symbol.self, Session.self, Run.self, Doctor.self, Demo.self,
        ]
    )

    /// Like the default, but a malformed command line is one line on stderr (with where to
    /// find the usage), not the usage block: scripts read one clear line and status 64.
    static func main() {
        // No subcommand is a malformed command line: the usage, on stderr, and status 64.
        if CommandLine.arguments.count == 1 {
            printError(helpMessage())
            Glibc.exit(ExitStatus.usage.rawValue)
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            guard code == .validationFailure else { exit(withError: error) }
            let message = oneLineMessage(fullMessage(for: error))
            let words = CommandLine.arguments.dropFirst().prefix { !$0.hasPrefix("-") }
            let topic =
                words.first.flatMap { name in
                    configuration.subcommands.contains { $0._commandName == name } ? " " + name : nil
                } ?? ""
            printError("vmio-ptrace: \(message) (see: vmio-ptrace help\(topic))")
            Glibc.exit(code.rawValue)
        }
    }
}
