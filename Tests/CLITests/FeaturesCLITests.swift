// Everyday conveniences of issue 12, end to end through the binary: address arithmetic
// with spaces and size suffixes, `symbol`, `maps --sizes`, `regs` naming the system call,
// usage without arguments, errno of an unreadable --file, a session search that finds nothing.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A session script in a temporary file.
final class SessionScript {
    let temp = TempPath("features.vmio")
    var path: String { temp.path }
    init(_ lines: [String]) throws {
        try (lines.joined(separator: "\n") + "\n").write(toFile: temp.path, atomically: true, encoding: .utf8)
    }
}

/// Each stdout line of a --json run parsed as an object.
func jsonLines(_ result: RunResult) -> [[String: Any]] {
    result.lines.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
}

/// The pid in `started PROGRAM as pid N`.
func runStartedPid(_ stderr: String) -> Int32? {
    guard let r = stderr.range(of: #"as pid [0-9]+"#, options: .regularExpression) else { return nil }
    return Int32(stderr[r].split(separator: " ").last!)
}

@Suite struct FeaturesCLITests {
    @Test func addressArithmeticWithSpacesAndSuffixes() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        let spaced = try Tool.run("read", holder.pidArg, "\(hx(buf)) + 0x100", "16", "--format", "str")
        #expect(spaced.exited(0) && spaced.lines == ["VMIO-MARKER-0001"], "\(spaced)")
        let suffixed = try Tool.run("read", holder.pidArg, "\(hx(buf - 4096))+4K + 0x100", "16", "--format", "str")
        #expect(suffixed.exited(0) && suffixed.lines == ["VMIO-MARKER-0001"], "\(suffixed)")
        let name = try Tool.run("read", holder.pidArg, "vmio-fixture-holder + 0", "4", "--format", "hex")
        #expect(name.exited(0) && name.stdoutText.contains("7f45 4c46"), "the ELF magic: \(name)")
        let overflow = try Tool.run("read", holder.pidArg, "0xffffffffffffff00 + 1K", "8")
        #expect(overflow.exited(1) && overflow.stderr.contains("0xffffffffffffff00"), "\(overflow)")
    }

    // MARK: symbol

    @Test func symbolTellsAddressesBack() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let code = holder.address("code"), counter = holder.address("counter"), buf = holder.address("buf")
        let exe = try #require(procMapsLines(holder.pid).first { $0.path.hasSuffix("/vmio-fixture-holder") })
        let result = try Tool.run("symbol", holder.pidArg, hx(code + 5), "sym:counter", hx(buf + 0x10))
        #expect(result.exited(0), "\(result)")
        #expect(result.lines.count == 3, "\(result)")
        #expect(
            result.lines.first
                == "\(hx(code + 5))  vmio_fixture_answer+0x5 (vmio-fixture-holder+\(hx(code + 5 - exe.start)))")
        #expect(
            result.lines.dropFirst().first == "\(hx(counter))  counter (vmio-fixture-holder+\(hx(counter - exe.start)))"
        )
        let bufLine = try #require(result.lines.last)
        #expect(bufLine.hasPrefix("\(hx(buf + 0x10))  ?? (0x"), "anonymous memory has no symbol: \(bufLine)")
        // The location is an ADDR for the same address.
        let location = String(bufLine.split(separator: "(").last!.dropLast())
        let back = try Tool.run("symbol", holder.pidArg, location)
        #expect(back.lines.first?.hasPrefix(hx(buf + 0x10) + " ") == true, "\(back)")

        let json = try #require(try Tool.run("symbol", holder.pidArg, hx(code), "--json").json)
        #expect(json["pid"] as? Int == Int(holder.pid))
        let entry = try #require((json["addresses"] as? [[String: Any]])?.first)
        #expect(entry["address"] as? String == hx(code) && entry["function"] as? String == "vmio_fixture_answer")
        #expect(entry["function_offset"] as? String == "0x0" && entry["perms"] as? String == "r-xp")
        #expect((entry["module"] as? String)?.hasSuffix("/vmio-fixture-holder") == true)
        #expect(entry["module_offset"] as? String == hx(code - exe.start))

        let unmapped = try Tool.run("symbol", holder.pidArg, hx(code), hx(holder.address("edge") + 4096))
        #expect(unmapped.exited(1), "\(unmapped)")
        #expect(unmapped.lines.last == "\(hx(holder.address("edge") + 4096))  ?? (in no mapping)", "\(unmapped)")
        #expect(unmapped.stderr.contains("is in no mapping of pid \(holder.pid)"), "\(unmapped)")
        #expect(try Tool.run("symbol", holder.pidArg).exited(64), "an ADDR is needed")

        let session = try SessionScript(["symbol sym:counter", "let f = (symbol \(hx(code + 1)))", "echo $f"])
        let ran = try Tool.run("session", holder.pidArg, session.path)
        #expect(ran.exited(0), "\(ran)")
        #expect(ran.lines.first?.hasPrefix("\(hx(counter))  counter (") == true, "\(ran)")
        #expect(ran.lines.last == "vmio_fixture_answer+0x1", "\(ran)")
    }

    /// In a session `symbol` takes the command line's ADDR… too, each `PID:ADDR` of another
    /// process as `read` does; addresses of two processes on one line are refused.
    @Test func sessionSymbolTakesSeveralAddressesAndPidAddr() throws {
        let holder = try Fixtures.launch(.holder), other = try Fixtures.launch(.holder)
        defer {
            holder.terminate()
            other.terminate()
        }
        let counter = holder.address("counter"), code = holder.address("code")
        let session = try SessionScript([
            "symbol sym:counter \(hx(code + 1))",
            "symbol \(other.pid):sym:counter \(other.pid):\(hx(other.address("code")))",
        ])
        let ran = try Tool.run("session", holder.pidArg, session.path)
        #expect(ran.exited(0), "\(ran)")
        #expect(ran.lines.count == 4, "\(ran)")
        #expect(ran.lines.first?.hasPrefix("\(hx(counter))  counter (") == true, "\(ran)")
        #expect(ran.lines.dropFirst().first?.hasPrefix("\(hx(code + 1))  vmio_fixture_answer+0x1 (") == true, "\(ran)")
        #expect(ran.lines.dropFirst(2).first?.hasPrefix("\(hx(other.address("counter")))  counter (") == true)
        let mixed = try SessionScript(["symbol sym:counter \(other.pid):sym:counter"])
        let refused = try Tool.run("session", holder.pidArg, mixed.path)
        #expect(refused.exited(1) && refused.stderr.contains("one process a line"), "\(refused)")
    }

    /// Two places with symbols outside a file's mappings, which gdb names: a library's `.bss`
    /// past its file's pages (libc's `environ`, in the anonymous mapping after libc's last
    /// one), and the kernel's vDSO (its own ELF tables, read from the target's memory; here
    /// checked against `eu-readelf -s` of the same bytes).
    @Test func symbolNamesTheBssPastTheFileAndTheVdso() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let maps = procMapsLines(holder.pid)
        let environ = try Tool.run("symbol", holder.pidArg, "sym:environ")
        #expect(environ.exited(0), "\(environ)")
        let address = try #require(
            environ.lines.first.flatMap { UInt64($0.prefix { $0 != " " }.dropFirst(2), radix: 16) })
        let holding = try #require(maps.first { $0.contains(address) })
        try #require(holding.path.isEmpty, "environ is in libc's file pages here, not past them: \(holding)")
        #expect(environ.lines.first?.contains("environ ") == true, "named as gdb does: \(environ)")

        let vdso = try #require(maps.first { $0.path == "[vdso]" })
        let image = TempPath("vdso.so")
        let read = try Tool.run(
            "read", holder.pidArg, "[vdso]", String(vdso.end - vdso.start), "--format", "raw", "-o", image.path)
        #expect(read.exited(0), "\(read)")
        let table = try Tool.runProgram("/usr/bin/eu-readelf", ["-s", image.path])
        // `   9: 0000000000000b10    902 FUNC    GLOBAL DEFAULT   12 __vdso_clock_gettime@@LINUX_2.6`
        let entry = try #require(
            table.lines.first { $0.contains(" FUNC ") && $0.contains(" GLOBAL ") && $0.contains("clock_gettime") },
            "\(table)")
        let fields = entry.split(separator: " ")
        let value = try #require(UInt64(fields[1], radix: 16))
        let name = String(fields.last!.prefix { $0 != "@" })
        let named = try Tool.run("symbol", holder.pidArg, "[vdso]+\(hx(value + 1))")
        #expect(named.lines.first == "\(hx(vdso.start + value + 1))  \(name)+0x1 ([vdso]+\(hx(value + 1)))", "\(named)")

    }

    // MARK: maps --sizes

    @Test func mapsSizesAgainstSmaps() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let result = try Tool.run("maps", holder.pidArg, "--sizes")
        #expect(result.exited(0), "\(result)")
        let lines = result.lines
        let header = try #require(lines.first)
        #expect(
            header.split(separator: " ") == [
                "Address", "Perm", "Size", "Rss", "Pss", "Private_Dirty", "Swap", "Mapping",
            ])
        let kernel = procMapsLines(holder.pid)
        #expect(lines.count == kernel.count + 2, "a header, one line a mapping, the totals: \(lines)")
        var sizeSum: UInt64 = 0
        for (line, mapping) in zip(lines.dropFirst(), kernel) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            #expect(UInt64(fields[0], radix: 16) == mapping.start && String(fields[1]) == mapping.perms, "\(line)")
            let size = try #require(UInt64(fields[2]))
            #expect(size == (mapping.end - mapping.start) >> 10, "\(line)")
            sizeSum += size
            let rss = try #require(UInt64(fields[3])), pss = try #require(UInt64(fields[4]))
            #expect(rss <= size && pss <= rss, "\(line)")
        }
        let totals = try #require(lines.last).split(separator: " ", omittingEmptySubsequences: true)
        #expect(totals.first == "total" && totals.last == "KiB" && UInt64(totals[1]) == sizeSum, "\(lines.last!)")

        let json = try #require(try Tool.run("maps", holder.pidArg, "--sizes", "--json").json)
        let mappings = try #require(json["mappings"] as? [[String: Any]])
        #expect(mappings.count == kernel.count)
        let buf = try #require(
            mappings.first {
                ($0["start"] as? String).flatMap(u64).map { $0 <= holder.address("buf") } == true
                    && (($0["end"] as? String).flatMap(u64) ?? 0) > holder.address("buf")
            })
        #expect(u64(buf["rss"]) ?? 0 >= 65536 && u64(buf["private_dirty"]) ?? 0 >= 65536, "\(buf)")
        let totalsJSON = try #require(json["totals"] as? [String: Any])
        #expect(u64(totalsJSON["size"]) == sizeSum << 10)
        #expect(Set(totalsJSON.keys) == ["size", "rss", "pss", "private_dirty", "swap"])
    }

    // MARK: regs

    @Test func regsNamesTheSystemCallInAlignedColumns() throws {
        let sleeper = try Running("/bin/sleep", ["30"])
        defer {
            kill(sleeper.pid, SIGKILL)
            _ = sleeper.finish(timeout: 5)
        }
        #expect(waitUntil { procStatus(sleeper.pid)["State"]?.hasPrefix("S") == true })
        let result = try Tool.run("regs", String(sleeper.pid))
        #expect(result.exited(0), "\(result)")
        let registerLines = result.lines.filter { $0.hasPrefix("  ") }
        #expect(registerLines.count == 27, "\(result)")
        let columns = Set(registerLines.map { $0.range(of: "0x")!.lowerBound.utf16Offset(in: $0) })
        #expect(columns.count == 1, "every value starts in one column: \(registerLines)")
        let orig = try #require(registerLines.last)
        #expect(orig.hasPrefix("  orig_rax 0x00000000000000e6  (clock_nanosleep)"), "\(orig)")

        // The interrupt restarts the sleep through restart_syscall: a fresh sleeper for --json.
        let second = try Running("/bin/sleep", ["30"])
        defer {
            kill(second.pid, SIGKILL)
            _ = second.finish(timeout: 5)
        }
        #expect(waitUntil { procStatus(second.pid)["State"]?.hasPrefix("S") == true })
        let json = try #require(try Tool.run("regs", String(second.pid), "--json").json)
        let thread = try #require((json["threads"] as? [[String: Any]])?.first)
        #expect(thread["syscall"] as? String == "clock_nanosleep", "\(thread)")
        let again = try Tool.run("regs", String(second.pid))
        #expect(again.lines.last?.hasSuffix("  (restart_syscall)") == true, "\(again)")
    }

    // MARK: small frictions

    @Test func noArgumentsPrintsTheUsageAndExits64() throws {
        let result = try Tool.run([])
        #expect(result.exited(64), "\(result)")
        #expect(result.stderr.contains("USAGE: vmio-ptrace <subcommand>") && result.stderr.contains("symbol"))
        #expect(result.stdout.isEmpty)
    }

    @Test func writeFileNamesTheErrno() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let result = try Tool.run("write", holder.pidArg, hx(holder.address("buf")), "--file", "/nonexistent/file")
        #expect(result.exited(1), "\(result)")
        #expect(
            result.stderr == "vmio-ptrace: cannot read /nonexistent/file: No such file or directory (errno 2)\n",
            "\(result)")
        let directory = try Tool.run("write", holder.pidArg, hx(holder.address("buf")), "--file", "/")
        #expect(directory.exited(1) && directory.stderr.contains("errno 21"), "EISDIR: \(directory)")
    }

    @Test func aSessionSearchWithoutAHitSaysWhatAndWhere() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let script = try SessionScript([#"let m = search --string "NO-SUCH-MARKER" --region [heap] --region [stack]"#])
        let result = try Tool.run("session", holder.pidArg, script.path)
        #expect(result.exited(1), "\(result)")
        #expect(
            result.stderr.contains(
                "line 1:9: search found no string:NO-SUCH-MARKER in [heap], [stack] of pid \(holder.pid) (0 hits in "),
            "\(result)")
    }

    @Test func typedValuesInHex() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        let one = try Tool.run("read", holder.pidArg, hx(buf + 0x200), "8", "--format", "x64")
        #expect(one.exited(0) && one.lines == ["0x1122334455667788"], "\(one)")
        let words = try Tool.run("read", holder.pidArg, hx(buf + 0x318), "2", "--format", "x8")
        #expect(words.lines == ["\(hx(buf + 0x318)): 0xef", "\(hx(buf + 0x319)): 0xbe"], "\(words)")
        #expect(try Tool.run("write", holder.pidArg, hx(buf + 0x8000), "--u32", "7").exited(0))
        let padded = try Tool.run("read", holder.pidArg, hx(buf + 0x8000), "4", "--format", "x32", "--json")
        #expect((padded.json?["values"] as? [String]) == ["0x00000007"], "every digit: \(padded)")
        let script = try SessionScript(["expect (read \(hx(buf + 0x318)) 2 --format x16) == 0xbeef"])
        #expect(try Tool.run("session", holder.pidArg, script.path).exited(0))
    }
}
