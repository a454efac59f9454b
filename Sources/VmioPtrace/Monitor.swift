import VmIO

/// One change `monitor` saw: when (after the monitor started), and the bytes before and after.
public struct MonitorChange: Sendable {
    /// When the change was seen, after the monitor started.
    public var elapsed: Duration
    /// The bytes before.
    public var old: [UInt8]
    /// The bytes after.
    public var new: [UInt8]
}

/// Why a monitor ended.
public enum MonitorEnd: Hashable, Sendable {
    /// The caller had seen enough.
    case done
    /// The process ended.
    case targetGone
    /// Part of the range could no longer be read (unmapped, protected).
    case unreadable(AddressRange)
    /// A fatal signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE) reached this process while
    /// the monitor recorded them (`endsOnFatalSignal`): the caller reports what it saw, then
    /// dies of it (``TrapSession/reraise(_:)``).
    case interrupted(signal: Int32)
}

extension Target {
    /// Polls `range` every `interval` without stopping the target, calling `changed` each
    /// time its bytes differ from the last poll (changes between two polls are seen as one);
    /// `changed` returns false to end. The wait between polls ends early when the process
    /// exits. A range unreadable at the first poll throws; one that becomes unreadable ends
    /// the monitor. With `endsOnFatalSignal`, a SIGINT (SIGTERM, SIGHUP, SIGQUIT, SIGPIPE) to
    /// this process ends it at once as ``MonitorEnd/interrupted(signal:)`` instead of killing
    /// the process before its caller could report.
    ///
    /// Throws ``TargetError/model(_:)`` with `VmIoError.rangeNotCovered` when part of `range`
    /// cannot be read at the first poll, and ``TargetError/transferStopped(_:)`` when a poll's
    /// read (`process_vm_readv(2)`) stops for another reason than the process's end (which
    /// ends the monitor as ``MonitorEnd/targetGone``).
    public func monitor(
        _ range: AddressRange, every interval: Duration, endsOnFatalSignal: Bool = false,
        changed: (MonitorChange) -> Bool
    ) throws(TargetError) -> MonitorEnd {
        if endsOnFatalSignal {
            Tracer.installSignalHandlersOnce()
            Sys.deferFatalSignals(true)
        }
        defer { if endsOnFatalSignal { Sys.deferFatalSignals(false) } }
        let end = try poll(range, every: interval, interruptible: endsOnFatalSignal, changed: changed)
        // A signal that came as the monitor ended for another reason is not lost either.
        if endsOnFatalSignal, let signal = Sys.takeDeferredSignal() { return .interrupted(signal: signal) }
        return end
    }

    private func poll(
        _ range: AddressRange, every interval: Duration, interruptible: Bool, changed: (MonitorChange) -> Bool
    ) throws(TargetError) -> MonitorEnd {
        let clock = ContinuousClock()
        let start = clock.now
        let count = Int(range.count)
        var last = [UInt8](repeating: 0, count: count)
        var now = [UInt8](repeating: 0, count: count)
        let holes = try last.withMutableBytes { raw throws(TargetError) in try read(range, into: raw) }
        if let hole = holes.first { throw .model(.rangeNotCovered(address: hole.start)) }
        while true {
            let exited: Bool
            do { exited = try Sys.waitForExit(pid, within: interval, interruptible: interruptible) } catch {
                // No pidfd to wait on: wait out the interval (a signal cuts it short), then ask /proc.
                Sys.pause(microseconds: UInt32(clamping: interval.inMicroseconds))
                exited = !ProcFS.isAlive(pid)
            }
            if interruptible, let signal = Sys.takeDeferredSignal() { return .interrupted(signal: signal) }
            if exited { return .targetGone }
            let holes: [AddressRange]
            do {
                holes = try now.withMutableBytes { raw throws(TargetError) in try read(range, into: raw) }
            } catch {
                if case .transferStopped(let stop) = error, case .targetGone = stop.kind { return .targetGone }
                throw error
            }
            if let hole = holes.first { return .unreadable(hole) }
            var differs = false
            last.withUnsafeBytes { old in
                now.withUnsafeBytes { new in ByteCompare.differences(old, new) { _ in differs = true } }
            }
            guard differs else { continue }
            let change = MonitorChange(elapsed: clock.now - start, old: last, new: now)
            swap(&last, &now)
            if !changed(change) { return .done }
        }
    }
}
