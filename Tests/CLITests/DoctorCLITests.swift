// `vmio-ptrace doctor`: each check on a real situation made here — an unprivileged user
// (setpriv), a target that is not dumpable, a target under strace, a job-stopped target,
// a zombie, hidepid on a /proc of its own — and the same checks behind the permission
// errors of the other commands.

import Foundation
import Testing
import VmioFixtures
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

    /// `kernel.yama.ptrace_scope` set to 1 (ancestors only) and 2 (CAP_SYS_PTRACE only), as
    /// the doctor sees it for root and for nobody; the setting is restored afterwards. Only
    /// where Yama exists.
    @Test(
        .enabled(
            if: FileManager.default.fileExists(atPath: "/proc/sys/kernel/yama/ptrace_scope"),
            "no Yama in this kernel (/proc/sys/kernel/yama/ptrace_scope): ptrace_scope cannot be set"))
    func ptraceScopeOneAndTwo() throws {
        let path = "/proc/sys/kernel/yama/ptrace_scope"
        let saved = try #require(readProcFile(path)?.trimmingCharacters(in: .whitespacesAndNewlines))
        defer { try? (saved + "\n").write(toFile: path, atomically: false, encoding: .utf8) }
        let states = try Fixtures.launch(.states, wrapper: asNobody)
        defer { states.terminate() }
        for scope in ["1", "2"] {
            try (scope + "\n").write(toFile: path, atomically: false, encoding: .utf8)
            let root = try #require(try Tool.run("doctor", states.pidArg, "--json").json)
            let rootCheck = try #require(doctorChecks(root)["ptrace_scope"])
            #expect(rootCheck["status"] as? String == "ok", "scope \(scope), root: \(rootCheck)")
            #expect(
                (rootCheck["detail"] as? String)?.hasPrefix("kernel.yama.ptrace_scope is \(scope): ") == true,
                "\(rootCheck)")
            // nobody, the target's own uid, is not its ancestor and has no CAP_SYS_PTRACE:
            // refused either way, by this check.
            let nobody = try runAsNobody(["doctor", states.pidArg, "--json"])
            #expect(nobody.exited(3), "scope \(scope): \(nobody)")
            let nobodyJSON = try #require(nobody.json, "\(nobody)")
            let check = try #require(doctorChecks(nobodyJSON)["ptrace_scope"])
            #expect(check["status"] as? String == "problem", "scope \(scope): \(check)")
            #expect(
                (check["detail"] as? String)?.hasPrefix("kernel.yama.ptrace_scope is \(scope): ") == true, "\(check)")
            let fix =
                scope == "1"
                ? "run as root (sudo), or start the program under this tool (`vmio-ptrace run -- PROGRAM`), or `sysctl kernel.yama.ptrace_scope=0`"
                : "run as root (sudo), or `sysctl kernel.yama.ptrace_scope=1` (or 0)"
            #expect(nobody.json?["fix"] as? String == fix, "\(nobody)")
            // The commands agree: a stop is refused naming the check.
            let stop = try runAsNobody(["read", states.pidArg, "[stack]", "8", "--stop"])
            #expect(
                stop.exited(3) && stop.stderr.contains("ptrace_scope: kernel.yama.ptrace_scope is \(scope)"), "\(stop)")
        }
        try (saved + "\n").write(toFile: path, atomically: false, encoding: .utf8)
        #expect(readProcFile(path)?.trimmingCharacters(in: .whitespacesAndNewlines) == saved)
    }

    /// /proc/PID/mem unreadable (a seccomp filter on the tool refuses pread there, while
    /// process_vm_readv works): `proc_mem` is a problem that blocks forced writes only, so
    /// `--for read` and `--for write` are fine and `--for force-write` is refused (exit 3).
    @Test func procMemUnreadableBlocksForcedWritesOnly() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let filter = ["--allow-process-vm", "--deny-pread"]
        for operation in ["read", "write"] {
            let result = try runDenied(filter, ["doctor", holder.pidArg, "--for", operation, "--json"])
            #expect(result.exited(0), "--for \(operation): \(result)")
            #expect(result.json?["ok"] as? Bool == true && result.json?["operation"] as? String == operation)
        }
        let forced = try runDenied(filter, ["doctor", holder.pidArg, "--for", "force-write", "--json"])
        #expect(forced.exited(3), "\(forced)")
        let json = try #require(forced.json)
        #expect(json["ok"] as? Bool == false && json["operation"] as? String == "force-write")
        let checks = doctorChecks(json)
        let procMem = try #require(checks["proc_mem"])
        #expect(procMem["status"] as? String == "problem")
        #expect(
            (procMem["detail"] as? String)?.hasPrefix("reading /proc/\(holder.pid)/mem at 0x") == true
                && (procMem["detail"] as? String)?.hasSuffix("fails (EPERM (Operation not permitted))") == true,
            "\(procMem)")
        #expect(procMem["blocks"] as? [String] == ["force-write"], "\(procMem)")
        #expect(checks["process_vm_readv"]?["status"] as? String == "ok")
        #expect(checks["proc_mem_write"]?["status"] as? String == "ok")
        #expect((json["fix"] as? String)?.hasPrefix("none needed while process_vm_readv works") == true, "\(json)")
        // Text: the problem line and the fix naming the check.
        let text = try runDenied(filter, ["doctor", holder.pidArg, "--for", "force-write"])
        #expect(text.exited(3))
        #expect(text.lines.first == "pid \(holder.pid): can this tool write its read-only mappings (--force)?")
        #expect(text.lines.contains { $0.hasPrefix("problem  proc_mem          reading /proc/\(holder.pid)/mem") })
        #expect(text.lines.last?.hasSuffix("(proc_mem)") == true, "\(text.lines)")
    }

    /// /proc/PID/mem does not open for writing (a seccomp filter on the tool refuses opening
    /// files for writing): `proc_mem_write` is a problem for `--for force-write` only, and a
    /// forced write is refused with that check (exit 3) while an ordinary write works.
    @Test func procMemNotWritableBlocksForcedWritesOnly() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let filter = ["--allow-process-vm", "--deny-mem-write"]
        let write = try runDenied(filter, ["doctor", holder.pidArg, "--for", "write", "--json"])
        #expect(write.exited(0), "\(write)")
        #expect(write.json?["ok"] as? Bool == true && write.json?["fix"] is NSNull, "\(write)")
        let writeJSON = try #require(write.json, "\(write)")
        let check = try #require(doctorChecks(writeJSON)["proc_mem_write"])
        #expect(check["status"] as? String == "problem" && check["blocks"] as? [String] == ["force-write"], "\(check)")
        #expect(
            (check["detail"] as? String)?.hasPrefix(
                "/proc/\(holder.pid)/mem does not open for writing (EACCES (Permission denied)); ") == true, "\(check)")

        let forced = try runDenied(filter, ["doctor", holder.pidArg, "--for", "force-write", "--json"])
        #expect(forced.exited(3), "\(forced)")
        #expect(forced.json?["operation"] as? String == "force-write" && forced.json?["ok"] as? Bool == false)
        #expect(forced.json?["fix"] as? String == "run as root (sudo)", "\(forced)")
        let text = try runDenied(filter, ["doctor", holder.pidArg, "--for", "force-write"])
        #expect(text.lines.last == "fix: run as root (sudo) (proc_mem_write)", "\(text.lines)")

        // The commands agree: a forced write is refused naming the check, an ordinary one works.
        let ro = holder.address("ro")
        let refused = try runDenied(filter, ["write", holder.pidArg, hx(ro), "--hex", "00", "--force"])
        #expect(refused.exited(3), "\(refused)")
        #expect(
            refused.stderr.contains("proc_mem_write: /proc/\(holder.pid)/mem does not open for writing"), "\(refused)")
        #expect(try holder.get(ro, 1) == [0x5a])
        let plain = try runDenied(filter, ["write", holder.pidArg, hx(holder.address("buf") + 0x800), "--hex", "7e"])
        #expect(plain.exited(0), "\(plain)")
        #expect(try holder.get(holder.address("buf") + 0x800, 1) == [0x7e])
    }

    /// `--for write` and `--for force-write` against an unprivileged caller: both refused,
    /// each with its own question and the same one fix.
    @Test func forWriteAndForceWriteFromTheCommandLine() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let abilities = ["write": "write its memory", "force-write": "write its read-only mappings (--force)"]
        for (operation, ability) in abilities {
            let root = try Tool.run("doctor", holder.pidArg, "--for", operation)
            #expect(root.exited(0), "\(operation): \(root)")
            #expect(root.lines.first == "pid \(holder.pid): can this tool \(ability)?", "\(root.lines)")
            #expect(root.lines.last == "fix: nothing to fix: this tool can \(ability)", "\(root.lines)")
            let nobody = try runAsNobody(["doctor", holder.pidArg, "--for", operation, "--json"])
            #expect(nobody.exited(3), "\(operation): \(nobody)")
            #expect(nobody.json?["operation"] as? String == operation)
            #expect(nobody.json?["fix"] as? String == "run as root (sudo), or as uid 0", "\(nobody)")
        }
    }

    @Test func theOperationIsChecked() throws {
        let bad = try Tool.run("doctor", "1", "--for", "fly")
        #expect(bad.exited(64))
        #expect(try Tool.run("doctor", "--help").stdoutText.contains("ptrace_scope"))
    }
}
