// A program started with a pipe on each standard stream: what the fixture client and the
// tests' conversations with a session hold of it.

import Foundation

/// A program started with pipes on stdin, stdout and stderr; its output read line by line as
/// it comes, so a caller can hold a conversation with it.
public struct PipedProgram: Sendable {
    public let process: Process
    /// The write end of the program's standard input (closing it is an end of file there).
    public let input: FileHandle
    public let output: LineReader
    public let errors: LineReader

    /// Starts `executable` with `arguments`; `name` names the reading threads.
    public init(_ executable: URL, _ arguments: [String], name: String) throws {
        process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
        process.standardInput = inPipe
        process.standardOutput = outPipe
        process.standardError = errPipe
        // From the launcher thread: a fixture dies with the thread that started it.
        let started = process
        try LauncherThread.run { try started.run() }
        // Our copies of the child's ends must be closed, or we would never see EOF.
        try? inPipe.fileHandleForReading.close()
        try? outPipe.fileHandleForWriting.close()
        try? errPipe.fileHandleForWriting.close()
        input = inPipe.fileHandleForWriting
        output = LineReader(outPipe.fileHandleForReading, name: "\(name) stdout")
        errors = LineReader(errPipe.fileHandleForReading, name: "\(name) stderr")
    }
}
