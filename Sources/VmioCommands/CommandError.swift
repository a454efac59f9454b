import VmIO
import VmioPtrace

/// An error that knows the exit status it ends a command with; its description is its
/// one-line message. Classifying an error is reading these two properties; the errors of
/// the layers below get them in this file, the one place that maps them to exit statuses.
package protocol StatusError: Error, CustomStringConvertible {
    var exitStatus: ExitStatus { get }
}

/// A command's failure: its one-line message and the exit status it ends with.
public struct CommandError: StatusError, Sendable {
    public let exitStatus: ExitStatus
    public let message: String

    public init(_ status: ExitStatus, _ message: String) {
        exitStatus = status
        self.message = message
    }

    /// Bad input found at run time (status 1).
    public static func badInput(_ message: String) -> CommandError { CommandError(.badInput, message) }

    /// The target went away part-way through a command (status 4).
    public static func targetGone(_ message: String) -> CommandError { CommandError(.targetGone, message) }

    /// A malformed command line or option value (status 64).
    public static func usage(_ message: String) -> CommandError { CommandError(.usage, message) }

    /// Any error as a command error: a ``StatusError`` as it says, anything else as bad input.
    public init(_ error: any Error) {
        if let known = error as? any StatusError {
            self.init(known.exitStatus, known.description)
        } else {
            self.init(.badInput, "\(error)")
        }
    }

    public var description: String { message }
}

// MARK: - The errors of the layers below

extension TargetError: StatusError {
    public var exitStatus: ExitStatus {
        switch kind {
        case .badInput: .badInput
        case .partialCopy: .partialCopy
        case .permission: .permission
        case .targetGone: .targetGone
        }
    }

}

extension VmIoError: StatusError {
    public var exitStatus: ExitStatus {
        if case .partialCopy(let partial) = self { return partial.exitStatus }
        return .badInput
    }

}

extension PartialCopy {
    /// A transfer that stopped because the target went away or refused is that failure;
    /// any other stop is a partial copy. (Not a ``StatusError``: a partial copy is thrown
    /// only as ``VmIoError/partialCopy(_:)``, classified above.)
    public var exitStatus: ExitStatus {
        switch kind {
        case .targetGone: .targetGone
        case .permission: .permission
        default: .partialCopy
        }
    }

}

extension DumpError: StatusError {
    public var exitStatus: ExitStatus { .badInput }
}

extension CommandError {
    /// The `{"error", "status"}` object `--json` prints for a failure.
    public var json: JSONValue {
        .object([("error", .string(message)), ("status", .int(Int64(exitStatus.rawValue)))])
    }
}

/// The first error of a callback that may not throw: the library's loops (`DiffSource.diff`,
/// `Target.monitor`, `TrapSession.run`) take a callback that returns false to end, and throw
/// only their own typed error, so a command's callback that fails (its output cannot be
/// written) keeps the error here, ends the loop, and the command throws it after.
struct CallbackFailure {
    private var error: (any Error)?

    /// Runs `body`: its result, or false (end the loop) with its error kept.
    mutating func attempt(_ body: () throws -> Bool) -> Bool {
        do { return try body() } catch {
            self.error = error
            return false
        }
    }

    /// Whether an error was kept.
    var failed: Bool { error != nil }

    /// Throws the error kept, if any.
    func check() throws {
        if let error { throw error }
    }
}
