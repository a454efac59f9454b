import VmIO
import VmioPtrace

/// A progress line on stderr for long dumps, restores and searches: bytes done, rate,
/// ETA. Shown only when stderr is a terminal, redrawn at most ten times a second, and
/// erased at the end.
public final class ProgressLine {
    private let verb: String
    private let total: UInt64
    private let enabled: Bool
    private let started = ContinuousClock.now
    private var lastDraw = ContinuousClock.now

    /// A progress line for `verb` over `total` bytes, drawn when `enabled` and stderr is a terminal.
    public init(_ verb: String, total: UInt64, enabled: Bool = true) {
        self.verb = verb
        self.total = total
        self.enabled = enabled && Console.isTerminal(fd: 2)
    }

    public func update(_ done: UInt64) {
        guard enabled else { return }
        let now = ContinuousClock.now
        guard now - lastDraw >= .milliseconds(100) else { return }
        lastDraw = now
        let seconds = (now - started).inSeconds
        let rate = seconds > 0 ? Double(done) / seconds : 0
        var line = "\r\u{1b}[K\(verb): \(Self.size(Double(done))) of \(Self.size(Double(total)))  \(Self.size(rate))/s"
        if rate > 0 && total > done { line += "  ETA \(Self.format(Double(total - done) / rate, 1)) s" }
        StandardError.write(line)
    }

    /// Erases the line.
    public func finish() {
        if enabled { StandardError.write("\r\u{1b}[K") }
    }

    static func size(_ bytes: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = bytes, i = 0
        while v >= 1024 && i < units.count - 1 {
            v /= 1024
            i += 1
        }
        return format(v, i == 0 ? 0 : 1) + " " + units[i]
    }

    static func format(_ v: Double, _ decimals: Int) -> String {
        let scale = decimals == 0 ? 1.0 : 10.0
        let r = (v * scale).rounded() / scale
        return decimals == 0 ? String(Int(r)) : String(r)
    }
}
