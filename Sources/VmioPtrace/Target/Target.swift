import Glibc
import SystemPackage
import VmIO

/// A live process: its maps (refreshed on demand, with a new generation each time), an
/// owner registry over its address space, its memory (``ProcessMemory``, the read ladder),
/// and an optional ``Tracer`` holding it stopped.
///
/// This file is the target's lifecycle: open, refresh, stop, resume. The transfers are in
/// TransferEngine.swift, their reports in TransferReport.swift.
public final class Target {
    /// The id the process is reached through: the pid it was opened with or, when that
    /// process's main thread has exited and other threads run on, one of those threads
    /// (``reachableID(of:)``).
    public let pid: Int32
    /// The maps as last read (``refresh()`` reads them again, with a new generation).
    public private(set) var view: MemView
    /// The process may have mapped or unmapped memory since ``view`` was read: it ran since
    /// (a session's next command, a resume). A view that may be stale is read again only when
    /// it fails a request — an address it does not map, a name it does not know, a fault —
    /// and the request is then tried once more (ARCHITECTURE.md, "A view is a snapshot").
    public internal(set) var viewMayBeStale = false
    /// The owners of this target's memory: every transfer reads and writes under them.
    public let registry = OwnerRegistry()
    /// The target's memory, reached down the read ladder.
    var memory: ProcessMemory
    /// How long ``stop(timeout:)`` and ``withThreadStopped(_:timeout:_:)`` wait for each
    /// attach when no timeout is given.
    public var attachTimeout: Duration = .seconds(5)
    /// What the last ``resume()`` found: whether the target is back in its state from
    /// before the attach (RunState.swift).
    public internal(set) var lastRestore: RunStateCheck?
    /// The target's pointer width and byte order (TargetABI.swift), read on first use.
    public private(set) lazy var abi: TargetABI = TargetABI.of(pid: pid)
    var tracer: Tracer?
    /// Set while threads are stopped one at a time (ThreadStops.swift), until ``resume()``.
    var threadStopBaseline: ThreadStopBaseline?
    /// Loaded on first use by ``symbols`` (SymbolTable.swift).
    var symbolTable: SymbolTable?

    /// Opens a target: checks it is a live user process (not gone, a zombie or a kernel
    /// thread) and reads its maps. A process whose main thread has exited while other
    /// threads run on is live: it is reached through one of them (``pid``).
    ///
    /// Throws ``TargetError/noSuchProcess(pid:)`` for a pid that is not positive or names no
    /// process, ``TargetError/zombie(pid:command:parent:parentCommand:)`` and
    /// ``TargetError/kernelThread(pid:command:)`` for those, and what
    /// ``ProcessMaps/read(pid:generation:)`` throws.
    public init(pid: Int32) throws(TargetError) {
        guard pid > 0 else { throw .noSuchProcess(pid: pid) }
        let reached = try Self.reachableID(of: pid)
        self.pid = reached
        memory = ProcessMemory(pid: reached)
        view = try ProcessMaps.read(pid: reached, generation: 1)
    }

    deinit {
        tracer?.detach()
        finishThreadStops()
        Tracer.releaseLingering()
    }

    /// The id through which live user process `pid` is reached: `pid` itself or, when its
    /// main thread has exited (a zombie) while other threads run on, the first of those.
    /// The kernel frees an exited thread's hold on the memory, so through the zombie main
    /// thread the maps read empty and `process_vm_readv` fails with `ESRCH`; through any
    /// live thread of the process they work, and `/proc/TID/task` lists every thread.
    ///
    /// Refuses what is not a live user process: a missing pid (``TargetError/noSuchProcess(pid:)``,
    /// or a permission error when `hidepid` hides it), a zombie whose threads have all exited,
    /// a kernel thread.
    public static func reachableID(of pid: Int32) throws(TargetError) -> Int32 {
        let text: String
        do { text = try ProcFS.readText("/proc/\(pid)/stat") } catch {
            throw Classification.error(error, pid: pid, operation: .readMaps)
        }
        guard let stat = ProcessStat(text) else { throw .noSuchProcess(pid: pid) }
        if stat.isKernelThread { throw .kernelThread(pid: pid, command: ProcFS.command(pid)) }
        guard stat.isZombie else { return pid }
        if let live = ProcFS.liveThreadIfMainThreadExited(pid) { return live }
        throw .zombie(
            pid: pid, command: ProcFS.command(pid), parent: stat.parent, parentCommand: ProcFS.command(stat.parent))
    }

    /// Reads the maps again; the new view carries the next generation.
    ///
    /// Throws what ``ProcessMaps/read(pid:generation:)`` throws.
    @discardableResult
    public func refresh() throws(TargetError) -> MemView {
        view = try ProcessMaps.read(pid: pid, generation: view.generation + 1)
        viewMayBeStale = false
        return view
    }

    /// Marks ``view`` as one the process may have changed since (it ran): the next request the
    /// view fails reads the maps again first. A stopped target's maps cannot change.
    public func viewMayHaveChanged() {
        if tracer == nil { viewMayBeStale = true }
    }

    /// Reads the maps again when the view may be stale; true when it did.
    ///
    /// Throws what ``refresh()`` throws.
    @discardableResult
    public func refreshIfStale() throws(TargetError) -> Bool {
        guard viewMayBeStale else { return false }
        try refresh()
        return true
    }

    /// Runs `check` against the view; when it fails and the view may be stale, reads the
    /// maps again and runs `check` once more, whose answer stands.
    func withFreshViewOnFailure<Result>(_ check: () throws(TargetError) -> Result) throws(TargetError) -> Result {
        do { return try check() } catch {
            guard try refreshIfStale() else { throw error }
            return try check()
        }
    }

    /// The mapping that holds `address`, or nil; a view that may be stale is read again
    /// before it says none.
    ///
    /// Throws what ``refresh()`` throws.
    public func mapping(at address: Address) throws(TargetError) -> Mapping? {
        if let found = view.translate(address)?.mapping { return found }
        guard try refreshIfStale() else { return nil }
        return view.translate(address)?.mapping
    }

    /// Stops every thread (see ``Tracer``), waiting at most `timeout` (default
    /// ``attachTimeout``) for the stops. Idempotent.
    ///
    /// Throws what ``Tracer/init(pid:threads:timeout:)`` throws: the process gone, another tracer
    /// holding it, `ptrace(2)` (`PTRACE_SEIZE`) refused, or a thread that does not stop in time.
    public func stop(timeout: Duration? = nil) throws(TargetError) {
        guard tracer == nil else { return }
        viewMayBeStale = true  // it ran until now
        tracer = try Tracer(pid: pid, timeout: timeout ?? attachTimeout)
    }

    /// Starts `arguments[0]` (searched in PATH) traced and stopped at its first
    /// instruction; the target is held by this process until ``resume()``.
    ///
    /// Throws ``TargetError/system(call:errno:)`` when `arguments` is empty or the program cannot
    /// be started, ``TargetError/noSuchProcess(pid:)`` when it ends before its first stop, and what
    /// ``init(pid:)`` throws.
    public static func launchStopped(_ arguments: [String], nullStdin: Bool) throws(TargetError) -> Target {
        guard let file = arguments.first else { throw .system(call: "exec", errno: .invalidArgument) }
        let pid: Int32
        do { pid = try Sys.spawnTraced(arguments, nullStdin: nullStdin) } catch {
            throw .system(call: "exec \(file)", errno: error)
        }
        // The child stops with SIGTRAP as it finishes the exec.
        guard let status = try? Sys.waitpid(pid, hang: true), status.isStopped else {
            throw .noSuchProcess(pid: pid)
        }
        let target = try Target(pid: pid)
        target.tracer = Tracer(adoptingStoppedChild: pid)
        return target
    }

    /// Whether a fatal signal that ends this tool (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE)
    /// kills this target, a program it started (``launchStopped(_:nullStdin:)``) and kills at
    /// its end, instead of letting it go. Off again once it is let go or killed.
    public func killOnFatalSignal(_ on: Bool) {
        Sys.setKilledOnFatalSignal(on ? pid : 0)
    }

    /// Kills a target this process started (``launchStopped(_:nullStdin:)``) and reaps it.
    public func killAndReap() {
        Sys.setKilledOnFatalSignal(0)
        try? Sys.kill(pid, SIGKILL)
        resume()
        _ = try? Sys.waitpid(pid, hang: true)
    }

    /// Lets the target run again. Idempotent.
    /// The state from before the attach is restored and checked (``lastRestore``).
    /// Threads stopped one at a time (``withThreadStopped(_:timeout:_:)``) are checked here,
    /// once for the whole process.
    public func resume() {
        if let tracer { lastRestore = tracer.detach() }
        tracer = nil
        viewMayBeStale = true
        finishThreadStops()
        Tracer.releaseLingering()
    }

    /// Whether this target holds the process stopped (``stop(timeout:)`` until ``resume()``).
    public var isStopped: Bool { tracer != nil }
    /// The threads held stopped, by tid.
    public var stoppedThreads: [Int32] { tracer?.threads ?? [] }

    /// A thread held in a ptrace stop by this target's tracer (the main thread when it is
    /// held), for `PTRACE_PEEKDATA`; nil when the target is not stopped.
    var peekThread: Int32? {
        guard let tracer else { return nil }
        return tracer.holds(pid) ? pid : tracer.threads.first
    }

    /// Resolves an address expression against the current view; `sym:NAME` and
    /// `sym:FILE:NAME` against the ELF symbol tables of the mapped files (``symbols``).
    /// A name the view does not know (a region, a module) has the maps read again when they
    /// may be stale.
    ///
    /// Throws ``TargetError/model(_:)`` with the expression's `VmIoError` (an unknown or ambiguous
    /// region, an unknown symbol, an offset that overflows), and what ``refresh()`` throws.
    public func resolve(_ expression: AddressExpression) throws(TargetError) -> Address {
        try withFreshViewOnFailure { () throws(TargetError) -> Address in
            do throws(VmIoError) {
                return try expression.resolve(in: view) { (name, file) throws(VmIoError) -> Address in
                    try self.symbols.address(of: name, in: file)
                }
            } catch { throw .model(error) }
        }
    }
}
