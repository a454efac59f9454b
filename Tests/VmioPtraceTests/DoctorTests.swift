// The doctor's pieces (ptrace_scope meanings, /proc mount options, proc_mem.force_override,
// ELF headers, status fields), its checks against live processes of this test, the run
// state it reads, and the read ladder's bookkeeping.

import Foundation
import Testing
import VmIO
import VmioFixtures
import VmioPtrace
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct DoctorTests {
    // MARK: pure pieces

    @Test func everyPtraceScopeValueIsExplained() {
        #expect(Doctor.ptraceScopeMeaning(0).contains("same uid"))
        #expect(Doctor.ptraceScopeMeaning(1).contains("ancestor"))
        #expect(Doctor.ptraceScopeMeaning(2).contains("CAP_SYS_PTRACE"))
        let three = Doctor.ptraceScopeMeaning(3)
        #expect(three.contains("reboot") && three.contains("root included"), "\(three)")
        #expect(Doctor.ptraceScopeMeaning(7) == "an unknown value")
    }

    @Test func procMountOptionsAndHidepid() throws {
        let plain = "22 27 0:21 / /proc rw,relatime - proc proc rw\n27 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        #expect(Doctor.procMountOptions(mountinfo: plain) == ["rw", "relatime", "rw"])
        #expect(Doctor.hidepid(options: ["rw", "relatime", "rw"]) == nil)
        // Optional fields before the dash; a second /proc mount stacked on the first wins.
        let stacked = plain + "40 22 0:33 / /proc rw,nosuid shared:5 - proc proc rw,hidepid=invisible,gid=27\n"
        let options = try #require(Doctor.procMountOptions(mountinfo: stacked))
        let hide = try #require(Doctor.hidepid(options: options))
        #expect(hide.level == "invisible" && hide.gid == 27)
        #expect(Doctor.hidepid(options: ["hidepid=2"])?.level == "2")
        #expect(Doctor.hidepid(options: ["hidepid=2"])?.gid == nil)
        // Another filesystem on /proc is not procfs; /proc/sys is another mount point.
        #expect(Doctor.procMountOptions(mountinfo: "1 2 0:5 / /proc/sys ro - proc proc rw\n") == nil)
    }

    @Test func procMemForceOverride() {
        #expect(Doctor.forceOverride(cmdline: "quiet proc_mem.force_override=never root=/dev/sda\n") == "never")
        #expect(Doctor.forceOverride(cmdline: "quiet ro\n") == nil)
        #expect(
            Doctor.forceOverride(
                kernelConfig: "# CONFIG_PROC_MEM_ALWAYS_FORCE is not set\nCONFIG_PROC_MEM_FORCE_PTRACE=y\n") == "ptrace"
        )
        #expect(Doctor.forceOverride(kernelConfig: "CONFIG_PROC_MEM_NO_FORCE=y") == "never")
        #expect(Doctor.forceOverride(kernelConfig: "CONFIG_X=y") == nil)
        #expect(Doctor.kernelVersion("6.18.44-fc-v657") ?? (0, 0) == (6, 18))
        #expect(Doctor.kernelVersion("5.4.0") ?? (0, 0) == (5, 4))
        #expect(Doctor.kernelVersion("weird") == nil)
    }

    @Test func statusFields() {
        #expect(Doctor.parseIDs("1000\t1000\t0\t1000") == [1000, 1000, 0, 1000])
        #expect(Doctor.parseIDs("4242\t1") == [4242, 1])
        #expect(Doctor.seccompMode(status: ["Seccomp": "2"]) == 2)
        #expect(Doctor.seccompMode(status: [:]) == nil)
        #expect(Doctor.errnoText(EPERM).hasPrefix("EPERM ("))
        #expect(Doctor.errnoText(ENOSYS).hasPrefix("ENOSYS ("))
    }

    @Test func elfHeaders() throws {
        var header = [UInt8](repeating: 0, count: 64)
        header[0...3] = [0x7f, 0x45, 0x4c, 0x46]
        header[4] = 1; header[5] = 1; header[18] = 3  // ELF32, LSB, i386
        let i386 = try #require(TargetABI.parse(header: header))
        #expect(i386.pointerWidth == 4 && i386.byteOrder == .little && i386.machineName == "i386")
        #expect(i386.description == "ELF32 little-endian i386")
        #expect(i386.pointerText(0x1234) == "0x00001234")
        header[4] = 2; header[5] = 2; header[18] = 0; header[19] = 21  // ELF64, MSB, ppc64
        let ppc = try #require(TargetABI.parse(header: header))
        #expect(ppc.pointerWidth == 8 && ppc.isBigEndian && ppc.machineName == "ppc64")
        #expect(ppc.value(of: [0x11, 0x22, 0x33, 0x44]) == 0x1122_3344)
        #expect(ppc.bytes(of: 0x1122, width: 2) == [0x11, 0x22])
        #expect(i386.value(of: [0x11, 0x22, 0x33, 0x44]) == 0x4433_2211)
        #expect(TargetABI.parse(header: Array("#!/bin/sh\n and more bytes".utf8)) == nil)
        // This test process itself.
        let me = TargetABI.of(pid: getpid())
        #expect(me.source == .elfHeader && me.pointerWidth == 8 && me.machineName == "x86_64")
        #expect(TargetABI.of(pid: 999_999_999).source == .assumed)
    }

    @Test func runStateKinds() {
        #expect(RunState.kind(ofLetter: "T") == .jobStopped)
        #expect(RunState.kind(ofLetter: "t") == .traceStopped)
        #expect(RunState.kind(ofLetter: "Z") == .zombie)
        for letter: Character in ["R", "S", "D", "I"] { #expect(RunState.kind(ofLetter: letter) == .running) }
        let me = RunState.of(pid: getpid())
        #expect(me.kind == .running && me.tracerPid == 0)
        #expect(RunState.of(pid: 999_999_999).kind == .gone)
    }

    // MARK: live checks

    @Test func aHealthyTargetHasNothingToFix() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        for operation in DoctorOperation.allCases {
            let report = Doctor.examine(pid: holder.pid, for: operation)
            #expect(report.ok, "\(operation): \(report.checks.filter { $0.status == .problem }.map(\.detail))")
            #expect(report.fix == nil && report.reason == nil)
        }
        let report = Doctor.examine(pid: holder.pid)
        let names = report.checks.map(\.name)
        for name in [
            "hidepid", "target", "caller", "ptrace_scope", "dumpable", "tracer", "seccomp",
            "process_vm_readv", "proc_mem", "proc_mem_write", "namespace", "abi",
        ] {
            #expect(names.contains(name), "\(names)")
        }
        #expect(report.nspid == [holder.pid])
        #expect(report.abi?.pointerWidth == 8)
        #expect(report.state.kind == .running)
        #expect(!report.targetGone)
    }

    @Test func aMissingProcessIsGone() {
        let report = Doctor.examine(pid: 999_999_999, for: .read)
        #expect(!report.ok && report.targetGone)
        #expect(report.blocking?.name == "target")
        #expect(report.blocking?.detail == "no process 999999999")
    }

    // MARK: the read ladder on a live target

    @Test func theLadderReadsWithProcessVMFirst() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let target = try Target(pid: holder.pid)
        // Past the small-read limit, so the ladder starts at its first rung.
        let range = try AddressRange(
            start: holder.address("buf") + 0x100, count: UInt64(ProcessMemory.smallReadLimit) + 16)
        var bytes: [UInt8] = []
        let report = try target.stream(range, skipFaults: false) { _, chunk in
            bytes += chunk
            return true
        }
        #expect(bytes.prefix(16).elementsEqual("VMIO-MARKER-0001".utf8))
        #expect(report.ranges == [MovedRange(address: range.start, length: range.count, mechanism: .processVMReadv)])
        #expect(report.stop == nil && report.stopMechanism == nil && report.stopErrno == nil)

        // A typed value (at most smallReadLimit bytes) takes one pread on the kept-open /proc/PID/mem.
        let small = try AddressRange(start: holder.address("buf") + 0x200, count: 8)
        var value: [UInt8] = []
        let smallReport = try target.stream(small, skipFaults: false) { _, chunk in
            value += chunk
            return true
        }
        #expect(value == [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
        #expect(smallReport.ranges == [MovedRange(address: small.start, length: 8, mechanism: .pread)])

        // A read running into the unmapped pages after `edge`: the hole says which mechanism failed.
        let edge = holder.address("edge")
        let past = try AddressRange(start: edge, count: 8192)
        var filled: [UInt8] = []
        let best = try target.stream(past, skipFaults: true, fillHoles: true) { at, chunk in
            #expect(at == edge + UInt64(filled.count))
            filled += chunk
            return true
        }
        #expect(filled.count == 8192)
        #expect(filled[0..<4096].allSatisfy { $0 == 0xab } && filled[4096...].allSatisfy { $0 == 0 })
        #expect(best.moved == 4096 && best.holes.count == 1)
        #expect(best.holes.first?.mechanism == .maps && best.holes.first?.errno == EFAULT)
    }
}
