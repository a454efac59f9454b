import Glibc
import SystemPackage
import VmIO

/// The mappings of a live process, read from `/proc/PID/maps`.
public enum ProcessMaps {
    /// Reads and parses `/proc/PID/maps` into a view stamped with `generation`; the maps of a
    /// big process are parsed while they are read (``ProcFS/withContents(of:whileReading:_:)``).
    ///
    /// Throws ``TargetError/noSuchProcess(pid:)`` when the process is gone,
    /// ``TargetError/permissionDenied(pid:operation:reason:)`` when the file may not be read
    /// (`open(2)`), and ``TargetError/model(_:)`` with `VmIoError.mapsSyntax` for a line that does not
    /// parse, or with `mappingsOverlap`/`mappingsUnsorted` when reads stay inconsistent for 2 s.
    public static func read(pid: Int32, generation: UInt64 = 0) throws(TargetError) -> MemView {
        // A read of /proc/PID/maps is not atomic: the kernel prints it a chunk at a time, and a
        // target that maps and unmaps meanwhile can hand out overlapping or unsorted lines
        // (README.md, "Sanitizers": one read in four or more, for a process splitting and
        // merging mappings, as a sanitized one does; more on a loaded machine). Read again
        // until one is consistent: at least 8 times, and for up to 2 seconds.
        let deadline = ContinuousClock.now + .seconds(2)
        var attempt = 0
        while true {
            do { return try readOnce(pid: pid, generation: generation) } catch {
                guard case .model(let e) = error, attempt < 8 || ContinuousClock.now < deadline else { throw error }
                switch e {
                case .mappingsOverlap, .mappingsUnsorted:
                    attempt += 1
                    sched_yield()  // let the writer finish what it is changing
                default: throw error
                }
            }
        }
    }

    static func readOnce(pid: Int32, generation: UInt64) throws(TargetError) -> MemView {
        let parsed: Result<MemView, VmIoError>
        do {
            let path = "/proc/\(pid)/maps"
            if Target.oneThread {
                parsed = try ProcFS.withContents(of: path) { raw in
                    Result { () throws(VmIoError) in try MapsParser.parse(bytes: raw, generation: generation) }
                }
            } else {
                // The lines read so far are parsed while the kernel prints the next ones.
                var lines = MapsParser.LinesInProgress()
                parsed = try ProcFS.withContents(of: path, whileReading: { lines.take($0) }) { raw in
                    Result { () throws(VmIoError) in try MemView(mappings: lines.finish(raw), generation: generation) }
                }
            }
        } catch {
            throw Classification.error(error, pid: pid, operation: .readMaps)
        }
        if case .success(let view) = parsed, view.mappings.isEmpty, !ProcFS.isAlive(pid) {
            throw .noSuchProcess(pid: pid)
        }
        do { return try parsed.get() } catch { throw .model(error) }
    }
}
