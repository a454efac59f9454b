import Glibc

/// The tool's standard error: unbuffered, so a line shows at once and in order with the
/// progress line.
public enum StandardError {
    /// Writes `text` as it is.
    public static func write(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var done = 0
            while done < bytes.count {
                let n = Glibc.write(2, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                done += n
            }
        }
    }

    /// Writes one line.
    public static func line(_ text: String) { write(text + "\n") }
}
