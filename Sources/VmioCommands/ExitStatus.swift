/// The documented exit statuses (README.md, "Exit status"), shared by the command line and sessions.
public enum ExitStatus: Int32, Sendable {
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
