import VmIO
import VmioPtrace

/// What a command needs of its target's threads.
public enum StopPolicy: Sendable {
    /// Nothing attaches: reads need no stop.
    case running
    /// Every thread stopped for a consistent view; a thread that does not stop in time is
    /// named in a warning and the command goes on without the stop (`read`, `dump`, `search`).
    case consistent
    /// Every thread stopped, or the command fails (`copy --stop`, `restore --stop`).
    case required
}

/// How current a command needs its target's maps to be.
public enum MapsNeed: Sendable {
    /// It uses the whole view (maps, dump, search, backtraces): maps that may have changed
    /// since they were read are read again before it runs.
    case current
    /// It uses addresses only (read, write, copy): the view is read again when it fails one
    /// of them (an address it does not map, a name it does not know, a fault), so a session's
    /// command costs the same however many mappings the target has.
    case onDemand
}

extension StopOptions {
    /// `policy` when `--stop` was given, else ``StopPolicy/running``.
    public func policy(_ policy: StopPolicy) -> StopPolicy { stop ? policy : .running }
}

/// The targets a command line or a session has opened, each once.
public final class TargetPool {
    private var targets: [Int32: Target] = [:]
    /// Targets whose maps are older than the command now running.
    private var stale: Set<Int32> = []

    public init(_ targets: Target...) {
        for target in targets { self.targets[target.pid] = target }
    }

    /// The target `pid`, opened on first use (and then handed to `opened`); the view of one
    /// opened before the current command is marked as one the process may have changed since
    /// (``Target/viewMayBeStale``).
    public func target(_ pid: Int32, opened: (Target) -> Void = { _ in }) throws(TargetError) -> Target {
        if let known = targets[pid] {
            if stale.remove(pid) != nil { known.viewMayHaveChanged() }
            return known
        }
        let target = try Target(pid: pid)
        targets[pid] = target
        opened(target)
        return target
    }

    /// Marks every target's maps as older than the next command.
    public func beginCommand() {
        stale = Set(targets.keys)
    }

    /// Lets every target go (but `pid`, when given: its owner lets it go).
    public func resumeAll(except pid: Int32? = nil) {
        for target in targets.values where target.pid != pid { target.resume() }
    }
}

/// The warning for `target`, opened as `pid`, when the process is reached through another
/// thread because its main thread has exited (``Target/reachableID(of:)``); nil otherwise.
public func reachedThroughThreadWarning(_ target: Target, pid: Int32) -> String? {
    guard target.pid != pid else { return nil }
    return "pid \(pid)'s main thread has exited; the process is reached through its thread \(target.pid)"
}

/// What a command runs with: the targets (and the default one), how its output is given
/// back, and where its warnings go. The command line makes one a run; a session one for
/// the whole session.
public final class CommandContext {
    /// The target a command works on when it names none (the command line's PID, the
    /// session's process).
    public let pid: Int32?
    public let targets: TargetPool
    /// The command line: output is streamed to standard output as it comes (and JSON is
    /// one object). A session collects each result (text lines, JSON fields, a value).
    public let streams: Bool
    public let json: Bool
    /// Long commands draw a progress line on a terminal.
    public let showsProgress: Bool
    /// Receives one warning (without the `vmio-ptrace: warning: ` its printer adds).
    public let warn: (String) -> Void
    /// A session's breakpoints and watchpoints (the command line has none).
    public let traps: SessionTraps

    public init(
        pid: Int32?, targets: TargetPool, streams: Bool, json: Bool, showsProgress: Bool,
        traps: SessionTraps = SessionTraps(), warn: @escaping (String) -> Void
    ) {
        self.pid = pid
        self.targets = targets
        self.streams = streams
        self.json = json
        self.showsProgress = showsProgress
        self.traps = traps
        self.warn = warn
    }

    /// The same context with `pid` as the default target.
    public func with(pid: Int32) -> CommandContext {
        CommandContext(
            pid: pid, targets: targets, streams: streams, json: json, showsProgress: showsProgress, traps: traps,
            warn: warn)
    }

    /// The same context with its warnings dropped (a command whose own output says it).
    public func withoutWarnings() -> CommandContext {
        CommandContext(
            pid: pid, targets: targets, streams: streams, json: json, showsProgress: showsProgress, traps: traps,
            warn: { _ in })
    }

    /// Runs `body` on the target `pid` (the default one for nil), stopped as `policy` asks:
    /// every thread is stopped, then the maps are read again — after the stop, so they are
    /// the ones the stopped process has — and the threads are let go on every path. A
    /// target already stopped (a session's `stop`) stays as it is. Maps that may have
    /// changed since they were read are read again before `body` when `maps` is `.current`.
    public func withTarget<Result>(
        _ pid: Int32? = nil, stop policy: StopPolicy = .running, attach: AttachOptions? = nil,
        maps: MapsNeed = .current, _ body: (Target) throws -> Result
    ) throws -> Result {
        guard let pid = pid ?? self.pid else { throw CommandError.usage("no target process given") }
        let target = try targets.target(pid) { opened in
            if let warning = reachedThroughThreadWarning(opened, pid: pid) { warn(warning) }
        }
        let timeout = target.attachTimeout
        if let duration = attach?.duration { target.attachTimeout = duration }
        defer { target.attachTimeout = timeout }
        let stoppedHere = try stop(target, policy)
        defer { if stoppedHere { target.resume() } }
        if stoppedHere {
            try target.refresh()
        } else if maps == .current {
            try target.refreshIfStale()
        }
        return try body(target)
    }

    /// Runs `body` with a progress line for `verb` over `total` bytes (drawn on a terminal,
    /// on the command line only), erased on every path before anything else is printed.
    public func withProgress<Result>(
        _ verb: String, total: UInt64, _ body: (@escaping (UInt64) -> Void) throws -> Result
    ) rethrows -> Result {
        let line = ProgressLine(verb, total: total, enabled: showsProgress)
        defer { line.finish() }
        return try body(line.update)
    }

    /// Stops `target` as `policy` asks; true when this call stopped it.
    private func stop(_ target: Target, _ policy: StopPolicy) throws(TargetError) -> Bool {
        guard policy != .running, !target.isStopped else { return false }
        do {
            try target.stop()
        } catch .attachTimeout(let pid, let tid, let state) where policy == .consistent {
            warn(
                "thread \(tid) of pid \(pid) did not stop within the attach timeout (state \(state)); "
                    + "reading without stopping")
            return false
        }
        return true
    }
}
