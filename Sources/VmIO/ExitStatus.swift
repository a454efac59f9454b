/// The documented exit statuses (README.md, "Exit status"): how a command ended, as the command
/// line exits and a session (`VmioScript`'s `Interpreter`) reports it. Each failure class of
/// the errors below maps to one: bad input, a partial copy, a refusal, a target that is gone.
public enum ExitStatus: Int32, Sendable {
    /// Success.
    case ok = 0
    /// Bad input found at run time.
    case badInput = 1
    /// A partial copy: the count and the first faulting address are printed.
    case partialCopy = 2
    /// Permission refused, with the reason.
    case permission = 3
    /// The target is gone, or there is no such process.
    case targetGone = 4
    /// A malformed command line (or session line value).
    case usage = 64
}
