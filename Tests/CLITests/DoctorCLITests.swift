// `vmio-ptrace doctor`: each check on a real situation made here — an unprivileged user
// (setpriv), a target that is not dumpable, a target under strace, a job-stopped target,
// a zombie, hidepid on a /proc of its own — and the same checks behind the permission
// errors of the other commands.

import Foundation
import Testing
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// `setpriv` arguments that drop to `nobody` (uid and gid 65534, no groups, no capabilities).
let asNobody = ["/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--inh-caps=-all"]

/// Runs the tool as `nobody`.
func runAsNobody(_ arguments: [String], timeout: TimeInterval = 60) throws -> RunResult {
    try Tool.runProgram(asNobody[0], Array(asNobody.dropFirst()) + [Tool.path] + arguments, timeout: timeout)
}

/// The checks of a `doctor --json` object, by name.
func doctorChecks(_ object: [String: Any]) -> [String: [String: Any]] {
    var out: [String: [String: Any]] = [:]
    for case let check as [String: Any] in object["checks"] as? [Any] ?? [] {
        if let name = check["name"] as? String { out[name] = check }
    }
    return out
}

/// Installs strace (Debian) when it is missing; false when that fails.
func haveStrace() -> Bool {
    if FileManager.default.isExecutableFile(atPath: "/usr/bin/strace") { return true }
    _ = try? Tool.runProgram("/usr/bin/apt-get", ["install", "-y", "-qq", "strace"], timeout: 300)
    return FileManager.default.isExecutableFile(atPath: "/usr/bin/strace")
}

@Suite(.serialized) struct DoctorCLITests {
    @Test func aHealthyTargetPrintsOneLineACheckAndNothingToFix() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let text = try Tool.run("doctor", holder.pidArg)
        #expect(text.exited(0), "\(text)")
        let lines = text.lines
        #expect(lines.first == "pid \(holder.pid): can this tool stop it (attach with ptrace)?")
        let checkLines = lines.dropFirst().dropLast()
        #expect(checkLines.count >= 12)
        #expect(checkLines.allSatisfy { $0.hasPrefix("ok       ") }, "\(lines)")
        #expect(lines.last == "fix: nothing to fix: this tool can stop it (attach with ptrace)")

        let json = try #require(try Tool.run("doctor", holder.pidArg, "--json", "--for", "read").json)
        #expect(json["ok"] as? Bool == true && json["fix"] is NSNull && json["operation"] as? String == "read")
        #expect(json["nspid"] as? [Int] == [Int(holder.pid)])
        let abi = try #require(json["abi"] as? [String: Any])
        #expect(abi["pointer_width"] as? Int == 8 && abi["byte_order"] as? String == "little")
        let checks = doctorChecks(json)
        #expect(
            checks["caller"]?["detail"] as? String
                == "this tool runs as uid 0 (euid 0) with CAP_SYS_PTRACE effective: it may access any process")
        #expect((checks["ptrace_scope"]?["detail"] as? String)?.contains("ptrace_scope") == true)
        #expect((checks["proc_mem_write"]?["detail"] as? String)?.contains("proc_mem.force_override") == true)
        #expect(
            checks.values.allSatisfy { $0["status"] as? String == "ok" && ($0["blocks"] as? [Any])?.isEmpty == true })
    }

    @Test func anUnprivilegedUserIsToldToRunAsRootOrAsTheOwner() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let result = try runAsNobody(["doctor", holder.pidArg, "--json"])
        #expect(result.exited(3), "\(result)")
        let json = try #require(result.json)
        #expect(json["ok"] as? Bool == false)
        #expect(json["fix"] as? String == "run as root (sudo), or as uid 0")
        let caller = try #require(doctorChecks(json)["caller"])
        #expect(caller["status"] as? String == "problem")
        #expect(
            (caller["detail"] as? String)?.contains("uid 65534 (euid 65534) without CAP_SYS_PTRACE") == true,
            "\(caller)")
        #expect(caller["blocks"] as? [String] == ["read", "write", "stop", "force-write"])

        // Every permission error runs the same checks: the failing one, then its fix.
        let read = try runAsNobody(["read", holder.pidArg, hx(holder.address("buf")), "16"])
        #expect(read.exited(3), "\(read)")
        #expect(read.stderr.contains("caller: not privileged: this tool runs as uid 65534"), "\(read.stderr)")
        #expect(read.stderr.contains("; fix: run as root (sudo), or as uid 0"), "\(read.stderr)")
        let stop = try runAsNobody(["read", holder.pidArg, hx(holder.address("buf")), "16", "--stop", "--json"])
        #expect(stop.exited(3))
        #expect((stop.json?["error"] as? String)?.contains("fix: run as root") == true, "\(stop)")
        #expect(isFreeRunning(holder.pid))
    }

    @Test func theSameUserMayAndANonDumpableTargetIsNamed() throws {
        // A target running as nobody: nobody may read it …
        let states = try Fixtures.launch(.states, wrapper: asNobody)
        defer { states.terminate() }
        #expect(procStatus(states.pid)["Uid"]?.hasPrefix("65534") == true)
        let fine = try runAsNobody(["doctor", states.pidArg, "--json"])
        #expect(fine.exited(0), "\(fine)")
        #expect(
            doctorChecks(try #require(fine.json))["dumpable"]?["detail"] as? String == "pid \(states.pid) is dumpable")
        #expect(try runAsNobody(["read", states.pidArg, "[stack]", "8"]).exited(0))

        // … until it makes itself not dumpable: then only CAP_SYS_PTRACE may.
        #expect(try states.send("undumpable") == "ok")
        let refused = try runAsNobody(["doctor", states.pidArg, "--json"])
        #expect(refused.exited(3), "\(refused)")
        let json = try #require(refused.json)
        let dumpable = try #require(doctorChecks(json)["dumpable"])
        #expect(dumpable["status"] as? String == "problem")
        #expect((dumpable["detail"] as? String)?.contains("is not dumpable") == true, "\(dumpable)")
        #expect(
            json["fix"] as? String
                == "run as root (sudo): only CAP_SYS_PTRACE may access a process that is not dumpable")
        let read = try runAsNobody(["read", states.pidArg, "[stack]", "8"])
        #expect(read.exited(3))
        #expect(read.stderr.contains("dumpable: pid \(states.pid) is not dumpable"), "\(read.stderr)")

        // Root is told it is not dumpable, and that this does not stop root.
        let root = try #require(try Tool.run("doctor", states.pidArg, "--json").json)
        let asRoot = try #require(doctorChecks(root)["dumpable"])
        #expect(asRoot["status"] as? String == "ok")
        #expect((asRoot["detail"] as? String)?.hasSuffix("CAP_SYS_PTRACE overrides that") == true, "\(asRoot)")
        #expect(try states.send("ping") == "pong")
    }

    @Test func aTargetUnderStraceIsRefusedWithStracesPidAndName() throws {
        try #require(haveStrace(), "strace is not installed and could not be installed")
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let strace = try Running("/usr/bin/strace", ["-o", "/dev/null", "-p", holder.pidArg])
        defer {
            kill(strace.pid, SIGTERM)
            _ = strace.finish(timeout: 10)
        }
        try #require(waitUntil(timeout: 10) { procStatus(holder.pid)["TracerPid"] == String(strace.pid) })

        let doctor = try Tool.run("doctor", holder.pidArg, "--json")
        #expect(doctor.exited(3), "\(doctor)")
        let json = try #require(doctor.json)
        let tracer = try #require(doctorChecks(json)["tracer"])
        #expect(tracer["status"] as? String == "problem")
        #expect(
            (tracer["detail"] as? String)?.hasPrefix("already traced by pid \(strace.pid) (strace)") == true,
            "\(tracer)")
        #expect(tracer["blocks"] as? [String] == ["stop"])
        #expect(json["tracer_pid"] as? Int == Int(strace.pid))
        #expect((json["fix"] as? String)?.contains("detach pid \(strace.pid) (strace)") == true)
        // Reading needs no attach, so strace is no obstacle to it.
        #expect(try Tool.run("doctor", holder.pidArg, "--for", "read").exited(0))
        let read = try Tool.run("read", holder.pidArg, hx(holder.address("buf") + 0x100), "16", "--format", "raw")
        #expect(read.exited(0) && read.stdout.elementsEqual("VMIO-MARKER-0001".utf8), "\(read)")
        // Stopping it is refused with strace's pid and name, and strace keeps it.
        let stop = try Tool.run("read", holder.pidArg, hx(holder.address("buf")), "16", "--stop")
        #expect(stop.exited(3), "\(stop)")
        #expect(stop.stderr.contains("already traced by pid \(strace.pid) (strace)"), "\(stop.stderr)")
        #expect(procStatus(holder.pid)["TracerPid"] == String(strace.pid))
    }

    @Test func aJobStoppedTargetIsSaidToStayStopped() throws {
        let holder = try Fixtures.launch(.holder)
        defer {
            kill(holder.pid, SIGCONT)
            holder.terminate()
        }
        kill(holder.pid, SIGSTOP)
        try #require(waitUntil { procStatus(holder.pid)["State"]?.hasPrefix("T") == true })
        let json = try #require(try Tool.run("doctor", holder.pidArg, "--json").json)
        #expect(json["ok"] as? Bool == true)
        #expect((json["state"] as? [String: Any])?["kind"] as? String == "job-stopped")
        let target = try #require(doctorChecks(json)["target"]?["detail"] as? String)
        #expect(
            target.contains("state T (stopped): job-stopped; it stays stopped after vmio-ptrace lets it go"),
            "\(target)")
        #expect(procStatus(holder.pid)["State"]?.hasPrefix("T") == true)
    }

    @Test func aZombieHasNothingLeftAndItsParentIsNamed() throws {
        let states = try Fixtures.launch(.states)
        defer { states.terminate() }
        let reply = try states.send("zombie")
        let zombie = try #require(Int32(reply.split(separator: " ").last ?? ""), "\(reply)")
        #expect(procStatus(zombie)["State"]?.hasPrefix("Z") == true)
        let result = try Tool.run("doctor", String(zombie), "--json")
        #expect(result.exited(4), "\(result)")
        let json = try #require(result.json)
        let target = try #require(doctorChecks(json)["target"])
        #expect(target["status"] as? String == "problem")
        let detail = try #require(target["detail"] as? String)
        #expect(
            detail.contains("is a zombie") && detail.contains("parent pid \(states.pid) (vmio-fixture-st)"), "\(detail)"
        )
        #expect((json["fix"] as? String)?.contains("must reap it") == true)
        // The other commands say it is gone.
        #expect(try Tool.run("read", String(zombie), "0x1000", "8", "--stop").exited(4))
    }

    @Test func aMissingProcess() throws {
        let result = try Tool.run("doctor", "999999999")
        #expect(result.exited(4), "\(result)")
        #expect(
            result.lines.contains { $0.hasPrefix("problem  target ") && $0.hasSuffix(" no process 999999999") },
            "\(result.lines)")
        #expect(result.lines.last == "fix: check the pid (`ps -e`); the process may have exited (target)")
    }

    @Test func hidepidHidesOtherUsersProcessesAndIsNamed() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        // A /proc of its own with hidepid=invisible, in a mount namespace of its own.
        let script = "mount -t proc -o hidepid=invisible proc /proc && exec \"$@\""
        let result = try Tool.runProgram(
            "/usr/bin/unshare",
            ["--mount", "/bin/sh", "-c", script, "sh"] + asNobody + [Tool.path, "doctor", holder.pidArg, "--json"])
        #expect(result.exited(3), "\(result)")
        let json = try #require(result.json)
        let hidepid = try #require(doctorChecks(json)["hidepid"])
        #expect(hidepid["status"] as? String == "problem", "\(json)")
        #expect(
            (hidepid["detail"] as? String)?.contains(
                "hidepid=invisible: pid \(holder.pid) exists but is hidden from uid 65534") == true, "\(hidepid)")
        #expect(json["fix"] as? String == "run as root (sudo), or as the target's user")
        // A read there is a permission error (with the reason), not "no such process".
        let read = try Tool.runProgram(
            "/usr/bin/unshare",
            ["--mount", "/bin/sh", "-c", script, "sh"] + asNobody + [Tool.path, "read", holder.pidArg, "[stack]", "8"])
        #expect(read.exited(3), "\(read)")
        #expect(read.stderr.contains("hidepid: /proc is mounted with hidepid=invisible"), "\(read.stderr)")
    }

    @Test func theOperationIsChecked() throws {
        let bad = try Tool.run("doctor", "1", "--for", "fly")
        #expect(bad.exited(64))
        #expect(try Tool.run("doctor", "--help").stdoutText.contains("ptrace_scope"))
    }
}
