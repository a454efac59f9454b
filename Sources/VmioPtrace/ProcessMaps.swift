import SystemPackage
import VmIO

/// The mappings of a live process, read from `/proc/PID/maps`.
public enum ProcessMaps {
    /// Reads and parses `/proc/PID/maps` into a view stamped with `generation`.
    public static func read(pid: Int32, generation: UInt64 = 0) throws(TargetError) -> MemView {
        let parsed: Result<MemView, VmIoError>
        do {
            parsed = try ProcFS.withContents(of: "/proc/\(pid)/maps") { raw in
                Result { () throws(VmIoError) in try MapsParser.parse(bytes: raw, generation: generation) }
            }
        } catch {
            throw Diagnose.accessError(error, pid: pid, operation: "read the maps of")
        }
        if case .success(let view) = parsed, view.mappings.isEmpty, !ProcFS.isAlive(pid) {
            throw .noSuchProcess(pid: pid)
        }
        do { return try parsed.get() } catch { throw .model(error) }
    }
}
