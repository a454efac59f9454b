// The doctor's checks as pure functions of its facts (DoctorFacts), without a live process:
// a check that was not made is `skipped`, never `ok` (issue 19), and a refused maps read is
// blamed on the `maps` check, not on a check that did not refuse (issue 12, bug 9).

import SystemPackage
import Testing
import VmIO

@testable import VmioPtrace

/// The facts of a healthy target run by root, examined by root.
private func healthy(pid: Int32 = 4242) -> DoctorFacts {
    DoctorFacts(
        pid: pid,
        caller: .init(
            uid: 0, euid: 0, gid: 0, groups: [0], privileged: true, seccompMode: 0, seccompFilters: "0"),
        status: ["Uid": "0\t0\t0\t0", "Gid": "0\t0\t0\t0", "State": "S (sleeping)", "NSpid": "\(pid)"],
        exists: true, state: RunState(kind: .running, state: "S (sleeping)", tracerPid: 0), command: "target",
        isKernelThread: false, parentCommand: "init", callerIsAncestor: false, procMountOptions: ["rw"],
        ptraceScope: 1, memoryFileOwner: .success(0), maps: .success(0x1000), processVMErrno: nil,
        procMemErrno: nil, procMemWriteErrno: nil, tracerIsThisTool: false, tracerCommand: "?",
        kernelRelease: "6.18.0", kernelCommandLine: "proc_mem.force_override=always",
        kernelConfig: nil, abi: TargetABI.host)
}

private func check(_ report: DoctorReport, _ name: DoctorCheck.Name) -> DoctorCheck? {
    report.checks.first { $0.id == name }
}

@Suite struct DoctorCheckTests {
    @Test func aHealthyTargetHasEveryCheckOk() {
        let report = Doctor.report(healthy(), for: .stop)
        #expect(report.ok && report.reason == nil)
        #expect(report.checks.map(\.id) == DoctorCheck.Name.allCases)
        #expect(report.checks.allSatisfy { $0.status == .ok }, "\(report.checks.map { ($0.name, $0.status) })")
    }

    @Test func refusedMapsAreBlamedOnTheMapsCheck() {
        var facts = healthy()
        facts.maps = .failure(.permissionDenied)
        facts.procMemWriteErrno = .permissionDenied
        let report = Doctor.report(facts, for: .read)
        #expect(!report.ok)
        #expect(report.blocking?.id == .maps, "\(String(describing: report.blocking))")
        #expect(report.reason?.hasPrefix("maps: reading /proc/4242/maps fails (EACCES") == true)
        // The probes that need a readable address were not made: skipped, not ok.
        #expect(check(report, .processVMReadv)?.status == .skipped)
        #expect(check(report, .procMem)?.status == .skipped)
        #expect(check(report, .processVMReadv)?.detail.hasPrefix("not probed: /proc/4242/maps cannot be read") == true)
    }

    @Test func anAbiThatCannotBeReadIsSkipped() {
        var facts = healthy()
        facts.abi = nil
        let abi = check(Doctor.report(facts, for: .read), .abi)
        #expect(abi?.status == .skipped && abi?.blocks.isEmpty == true)
        #expect(abi?.detail.contains("cannot be read") == true)
    }

    @Test func unknownTargetIdsAreSkippedNotOk() {
        var facts = healthy()
        facts.status = nil
        facts.exists = false
        let report = Doctor.report(facts, for: .read)
        #expect(check(report, .caller)?.status == .skipped)
        #expect(report.targetGone && report.blocking?.id == .target)
    }

    @Test func aKernelThreadIsNamedAndBlocksEverything() {
        var facts = healthy(pid: 2)
        facts.isKernelThread = true
        facts.command = "kthreadd"
        facts.maps = .failure(.permissionDenied)
        let report = Doctor.report(facts, for: .stop)
        #expect(report.blocking?.id == .target && !report.targetGone)
        #expect(
            report.blocking?.detail == "pid 2 (kthreadd) is a kernel thread: it has no user memory, and the "
                + "kernel lets no process trace it")
        #expect(check(report, .maps) == nil, "no maps check for a kernel thread")
    }

    @Test func waitStatusesDecodeByTheirNamedParts() {
        #expect(WaitStatus(0x0000) == .exited(code: 0))
        #expect(WaitStatus(0x0700) == .exited(code: 7))
        #expect(WaitStatus(0x0009) == .signaled(signal: 9))
        #expect(WaitStatus(0xffff) == .continued)
        // PTRACE_EVENT_STOP (128) of a SIGTRAP stop after PTRACE_INTERRUPT: nothing to hand back.
        let interrupt = WaitStatus(128 << 16 | 5 << 8 | 0x7f)
        #expect(interrupt == .stopped(signal: 5, event: 128) && interrupt.signalToRedeliver == 0)
        // A SIGUSR1 caught in a signal-delivery stop is handed back at detach.
        #expect(WaitStatus(10 << 8 | 0x7f).signalToRedeliver == 10)
        #expect(WaitStatus(0x0000).signalToRedeliver == nil)
    }

    @Test func statLinesParseAroundOddCommandNames() {
        let text = "42 (a (b) c) Z 7 42 42 0 -1 2097156 0 0"  // flags: PF_KTHREAD | PF_EXITING
        let stat = ProcessStat(text)
        #expect(stat != nil, "\(text) does not parse")
        #expect(stat?.state == "Z" && stat?.parent == 7 && stat?.isZombie == true)
        #expect(stat?.isExiting == true && stat?.isKernelThread == true)
        #expect(ProcessStat("garbage") == nil)
    }

    @Test func errnosMeanOneThing() {
        #expect(AccessFailure(.badAddress, mechanism: .processVMReadv) == .fault)
        #expect(AccessFailure(.ioError, mechanism: .pread) == .fault)
        #expect(AccessFailure(.noSuchProcess, mechanism: .processVMReadv) == .gone)
        #expect(AccessFailure(.noSuchProcess, mechanism: .peekdata) == .notStopped)
        #expect(AccessFailure(.notPermitted, mechanism: .processVMReadv) == .refused)
        #expect(AccessFailure(.noFunction, mechanism: .processVMReadv) == .refused)
        #expect(AccessFailure(.invalidArgument, mechanism: .pwrite) == .other)
    }
}
