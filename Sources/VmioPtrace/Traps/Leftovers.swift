import Glibc
import SystemPackage
import VmIO

/// What a tool that could not clean up (killed with SIGKILL) may have left in a process:
/// code bytes that differ from the file they were mapped from (an `int3`), and debug
/// registers still enabled on a thread. The doctor reports them; ``Target/repairTrapLeftovers(_:)``
/// removes them.
public struct TrapLeftovers: Sendable {
    /// A run of code bytes that differ from the mapped file.
    public struct TextDifference: Sendable {
        /// Where the run starts in the process.
        public let address: Address
        /// What the process has.
        public let found: [UInt8]
        /// What the file has.
        public let file: [UInt8]
        /// The file the code was mapped from.
        public let path: String
    }

    /// A thread whose DR7 enables a debug register.
    public struct ThreadRegisters: Sendable {
        /// The thread.
        public let tid: Int32
        /// Its debug control register, DR7.
        public let dr7: UInt64
        /// DR0–DR3.
        public let addresses: [UInt64]
    }

    /// Code bytes that differ from their file.
    public var text: [TextDifference] = []
    /// Threads with a debug register enabled.
    public var threads: [ThreadRegisters] = []
    /// Checks that could not be made, one line each.
    public var skipped: [String] = []

    /// Whether nothing was found (checks that were skipped aside).
    public var isClean: Bool { text.isEmpty && threads.isEmpty }
}

/// What ``Target/repairTrapLeftovers(_:)`` did.
public struct TrapRepair: Sendable {
    /// Code bytes put back from the file.
    public var bytesRestored = 0
    /// Threads whose DR7 was cleared.
    public var threadsCleared = 0
    /// What could not be repaired, one line each.
    public var problems: [String] = []
}

extension Target {
    /// Looks for leftovers: each executable mapping of a file whose pages smaps shows
    /// private-dirty (written since it was mapped) is compared with the file, byte by byte;
    /// each thread's DR7 is read (each thread stopped on its own, briefly).
    ///
    /// Throws what ``ProcessSmaps/read(pid:)`` and ``threadInfos()`` throw, what stopping a
    /// thread throws (``withThreadStopped(_:timeout:_:)``), and ``TargetError/system(call:errno:)`` when
    /// `ptrace(2)` (`PTRACE_PEEKUSER`) cannot read a debug register; a mapping or its file that
    /// cannot be read to compare is ``TargetError/trap(_:)`` or ``TargetError/file(path:_:)``.
    public func trapLeftovers() throws(TargetError) -> TrapLeftovers {
        var found = TrapLeftovers()
        let usages = try ProcessSmaps.read(pid: pid)
        for usage in usages {
            let mapping = usage.mapping
            guard mapping.permissions.execute, mapping.isFileBacked, !mapping.isDeleted, usage.privateDirty > 0
            else { continue }
            do {
                found.text += try differences(in: mapping)
            } catch {
                found.skipped.append("\(mapping.path) at \(mapping.start.hex): \(error)")
            }
        }
        defer { finishThreadStops() }
        for info in try threadInfos() {
            do throws(TargetError) {
                let registers = try withThreadStopped(info.tid) {
                    () throws(TargetError) -> TrapLeftovers.ThreadRegisters in
                    do throws(Errno) {
                        let dr7 = try Sys.ptracePeekUser(info.tid, offset: Sys.debugRegisterOffset(7))
                        let addresses = try (0..<4).map { (n) throws(Errno) in
                            try Sys.ptracePeekUser(info.tid, offset: Sys.debugRegisterOffset(n))
                        }
                        return .init(tid: info.tid, dr7: dr7, addresses: addresses)
                    } catch {
                        throw .system(call: "ptrace(PTRACE_PEEKUSER, \(info.tid), DR7)", errno: error)
                    }
                }
                if !DebugRegisters.enabledSlots(registers.dr7).isEmpty { found.threads.append(registers) }
            } catch {
                if case .noSuchThread = error { continue }
                throw error
            }
        }
        return found
    }

    /// The runs of bytes where `mapping` differs from its file.
    private func differences(in mapping: Mapping) throws(TargetError) -> [TrapLeftovers.TextDifference] {
        let count = Int(mapping.range.count)
        var memory = [UInt8](repeating: 0, count: count)
        let access = memory.withUnsafeMutableBytes { self.memory.readForced(at: mapping.start, into: $0) }
        guard access.moved == count else { throw .trap("read \(access.moved) of \(count) bytes") }
        var file = [UInt8](repeating: 0, count: count)
        let fd: Int32
        do throws(Errno) { fd = try Sys.open(mapping.path, O_RDONLY) } catch {
            throw .system(call: "open \(mapping.path)", errno: error)
        }
        defer { Sys.close(fd) }
        // Past the file's end: zeros, as mapped.
        do throws(Errno) {
            _ = try file.withUnsafeMutableBytes { raw in
                Result { () throws(Errno) in try Files.read(fd, into: raw, at: mapping.offset) }
            }.get()
        } catch { throw .system(call: "pread \(mapping.path)", errno: error) }
        var runs: [TrapLeftovers.TextDifference] = []
        var i = 0
        while i < count {
            guard memory[i] != file[i] else {
                i += 1
                continue
            }
            let start = i
            while i < count && memory[i] != file[i] { i += 1 }
            runs.append(
                .init(
                    address: mapping.start + UInt64(start), found: Array(memory[start..<i]),
                    file: Array(file[start..<i]),
                    path: mapping.path))
        }
        return runs
    }

    /// Puts the file's bytes back over each difference (through `/proc/PID/mem`, verified) and
    /// clears DR0–DR3, DR6 and DR7 of each thread listed, each stopped on its own.
    public func repairTrapLeftovers(_ leftovers: TrapLeftovers) -> TrapRepair {
        var repair = TrapRepair()
        for difference in leftovers.text {
            do {
                let report = try write(difference.file, at: difference.address, force: true, verify: true)
                if report.mismatch == nil {
                    repair.bytesRestored += difference.file.count
                } else {
                    repair.problems.append("\(difference.address.hex) reads back differently after the repair")
                }
            } catch {
                repair.problems.append("\(difference.address.hex): \(error)")
            }
        }
        defer { finishThreadStops() }
        for thread in leftovers.threads {
            do throws(TargetError) {
                try withThreadStopped(thread.tid) { () throws(TargetError) in
                    do throws(Errno) {
                        try Sys.ptracePokeUser(thread.tid, offset: Sys.debugRegisterOffset(7), 0)
                        for n in [0, 1, 2, 3, 6] {
                            try Sys.ptracePokeUser(thread.tid, offset: Sys.debugRegisterOffset(n), 0)
                        }
                        let dr7 = try Sys.ptracePeekUser(thread.tid, offset: Sys.debugRegisterOffset(7))
                        if dr7 != 0 { repair.problems.append("thread \(thread.tid): DR7 reads \(dr7.hex)") }
                    } catch {
                        throw .system(call: "ptrace(PTRACE_POKEUSER, \(thread.tid), DR7)", errno: error)
                    }
                }
                repair.threadsCleared += 1
            } catch {
                repair.problems.append("thread \(thread.tid): \(error)")
            }
        }
        return repair
    }
}
