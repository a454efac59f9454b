import VmioPtrace

/// The tool's standard error: unbuffered, so a line shows at once and in order with the
/// progress line.
public enum StandardError {
    /// Writes `text` as it is (a failure is not reported: there is nowhere left to report it).
    public static func write(_ text: String) {
        Console.write(fd: 2, text)
    }

    /// Writes one line.
    public static func line(_ text: String) { write(text + "\n") }
}
