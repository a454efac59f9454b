import VmIO

/// What one command produced: text lines for a person, JSON fields for a program, a value
/// for a session's `let`/`expect`, and the exit status. A command that streamed its output
/// (``printed``) leaves the text and JSON empty.
public struct Outcome: Sendable {
    public var text: [String] = []
    public var json: [(String, JSONValue)] = []
    public var value: Value?
    public var status: ExitStatus = .ok
    /// The one-line message for stderr: the failure when `status` is not ok, else a note.
    public var message: String?
    /// The output was written while the command ran (a streamed read).
    public var printed = false

    public init() {}
}
