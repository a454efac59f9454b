import SystemPackage
import VmIO

/// The mappings of a live process, read from `/proc/PID/maps`.
public enum ProcessMaps {
    /// Reads and parses `/proc/PID/maps` into a view stamped with `generation`.
    public static func read(pid: Int32, generation: UInt64 = 0) throws(TargetError) -> MemView {
        // A read of /proc/PID/maps is not atomic: a target that maps and unmaps while it is
        // read can hand out overlapping or unsorted lines. Read again before calling it bad.
        var attempt = 0
        while true {
            do { return try readOnce(pid: pid, generation: generation) } catch {
                guard case .model(let e) = error, attempt < 8 else { throw error }
                switch e {
                case .mappingsOverlap, .mappingsUnsorted: attempt += 1
                default: throw error
                }
            }
        }
    }

    static func readOnce(pid: Int32, generation: UInt64) throws(TargetError) -> MemView {
        let parsed: Result<MemView, VmIoError>
        do {
            parsed = try ProcFS.withContents(of: "/proc/\(pid)/maps") { raw in
                Result { () throws(VmIoError) in try MapsParser.parse(bytes: raw, generation: generation) }
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
