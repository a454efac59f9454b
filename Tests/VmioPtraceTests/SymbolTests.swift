// Symbols: name → address and address → name over the ELF tables of mapped files, with
// the load bias from the maps, and `sym:` address expressions resolved by Target. None
// of this attaches to the target (maps and files only), so it runs in-process.

import Foundation
import Testing
import VmIO
import VmioFixtures
import VmioPtrace
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct SymbolTests {
    private func table(_ pid: Int32) throws -> SymbolTable {
        SymbolTable(pid: pid, view: try ProcessMaps.read(pid: pid))
    }

    @Test func counterByNameInTheHolder() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let symbols = try table(holder.pid)
        let counter = holder.address("counter")
        #expect(try symbols.address(of: "counter") == counter)
        #expect(try symbols.address(of: "counter", in: "vmio-fixture-holder") == counter)
        let exe = try #require(symbols.modules.first { $0.hasSuffix("/vmio-fixture-holder") })
        #expect(try symbols.address(of: "counter", in: exe) == counter, "a full path qualifies too")
        #expect(try symbols.address(of: "vmio_fixture_answer") == holder.address("code"))
    }

    @Test func addressToNameOfTheAnswerFunctionAndTheCounter() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let symbols = try table(holder.pid)
        let code = holder.address("code")
        let at = try #require(symbols.symbolize(code))
        #expect(at.name == "vmio_fixture_answer" && at.offset == 0 && at.address == code)
        #expect(at.module.hasSuffix("/vmio-fixture-holder"))
        #expect(at.description == "vmio_fixture_answer")
        let inside = try #require(symbols.symbolize(code + 5))
        #expect(
            inside.name == "vmio_fixture_answer" && inside.offset == 5
                && inside.description == "vmio_fixture_answer+0x5")
        let counter = try #require(symbols.symbolize(holder.address("counter") + 3))
        #expect(counter.name == "counter" && counter.offset == 3)
        #expect(symbols.symbolize(holder.address("buf")) == nil, "anonymous memory has no symbol")
    }

    @Test func missingSymbolsAreClearErrors() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let symbols = try table(holder.pid)
        #expect {
            try symbols.address(of: "no_such_symbol")
        } throws: { error in
            guard case VmIoError.unknownSymbol("no_such_symbol", let reason) = error else { return false }
            return reason.contains("files mapped by pid \(holder.pid)")
        }
        #expect {
            try symbols.address(of: "counter", in: "libnothere.so")
        } throws: { error in
            guard case VmIoError.unknownSymbol("counter", let reason) = error else { return false }
            return reason.contains("no file named 'libnothere.so'")
        }
        #expect {
            try symbols.address(of: "counter", in: "libc.so.6")
        } throws: { error in
            guard case VmIoError.unknownSymbol("counter", let reason) = error else { return false }
            return reason.contains("libc.so.6")
        }
    }

    @Test func targetResolvesSymExpressions() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let target = try Target(pid: holder.pid)
        let counter = holder.address("counter")
        #expect(try target.resolve(AddressExpression(parsing: "sym:counter")) == counter)
        #expect(try target.resolve(AddressExpression(parsing: "sym:vmio-fixture-holder:counter")) == counter)
        #expect(try target.resolve(AddressExpression(parsing: "sym:counter+8")) == counter + 8)
        #expect(try target.resolve(AddressExpression(parsing: "sym:counter-0x10")) == counter - 16)
        #expect(throws: TargetError.self) { try target.resolve(AddressExpression(parsing: "sym:no_such_symbol")) }
        // A refreshed view keeps working.
        try target.refresh()
        #expect(try target.resolve(AddressExpression(parsing: "sym:vmio_fixture_answer")) == holder.address("code"))
    }

    /// Shared libraries: the bias is the library's load address; checked against the
    /// dynamic linker's own answer in this process.
    @Test func sharedLibraryBiasMatchesDlsym() throws {
        let symbols = try table(getpid())
        var compared: [String] = []
        for name in ["getpid", "memcpy", "printf"] {
            let handle = try #require(dlopen(nil, RTLD_NOW))
            let expected = try #require(dlsym(handle, name), "dlsym(\(name))")
            // Under a sanitizer dlsym may answer its interceptor (ASan's printf), not libc's.
            let answer = UInt64(UInt(bitPattern: expected))
            guard procMapsLines(getpid()).contains(where: { $0.contains(answer) && $0.path.hasSuffix("libc.so.6") })
            else { continue }
            compared.append(name)
            let libc = try symbols.address(of: name, in: "libc.so.6")
            if name == "memcpy" {
                // An IFUNC: dlsym answers the implementation, the table the resolver; both in libc.
                #expect(symbols.symbolize(libc)?.module.hasSuffix("libc.so.6") == true)
            } else {
                #expect(libc == UInt64(UInt(bitPattern: expected)), "\(name)")
            }
        }
        // getpid is intercepted by no sanitizer: at least it was compared.
        #expect(compared.contains("getpid"), "compared \(compared)")
        let libcPath = try #require(symbols.modules.first { $0.hasSuffix("/libc.so.6") })
        let first = try #require(ProcessMaps.read(pid: getpid()).mappings.first { $0.path == libcPath })
        #expect(symbols.bias(of: libcPath) == first.start, "libc's first PT_LOAD is at p_vaddr 0")
    }

    /// A non-PIE executable runs at its link address: bias 0, symbols at their st_value.
    @Test func nonPIEExecutableHasBiasZero() throws {
        // scripts/setup installs a C compiler (gcc-multilib): its absence is a failure, not a skip.
        let clang = try #require(
            ["/usr/bin/cc", "/usr/bin/gcc", "/opt/swift/usr/bin/clang"].first {
                FileManager.default.isExecutableFile(atPath: $0)
            }, "no C compiler to build the non-PIE program with")
        let dir = NSTemporaryDirectory() + "vmio-nopie-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = """
            #include <stdio.h>
            #include <unistd.h>
            volatile unsigned long nopie_value = 7;
            int main(void) {
                printf("%lx\\n", (unsigned long)&nopie_value);
                fflush(stdout);
                char c;
                while (read(0, &c, 1) > 0) {}
                return 0;
            }
            """
        try source.write(toFile: dir + "/nopie.c", atomically: true, encoding: .utf8)
        let build = Process()
        build.executableURL = URL(fileURLWithPath: clang)
        build.arguments = ["-O0", "-g", "-no-pie", "-fno-pie", "-o", dir + "/nopie", dir + "/nopie.c"]
        try build.run()
        build.waitUntilExit()
        try #require(build.terminationStatus == 0, "building a non-PIE program")

        let program = Process()
        program.executableURL = URL(fileURLWithPath: dir + "/nopie")
        let input = Pipe(), output = Pipe()
        program.standardInput = input
        program.standardOutput = output
        try program.run()
        defer {
            try? input.fileHandleForWriting.close()
            program.waitUntilExit()
        }
        var line = ""
        while !line.hasSuffix("\n") {
            let data = output.fileHandleForReading.readData(ofLength: 1)
            if data.isEmpty { break }
            line += String(decoding: data, as: UTF8.self)
        }
        let expected = try #require(UInt64(line.trimmingCharacters(in: .whitespacesAndNewlines), radix: 16))
        let symbols = try table(program.processIdentifier)
        #expect(try symbols.address(of: "nopie_value") == expected)
        #expect(symbols.bias(of: dir + "/nopie") == 0)
        #expect(symbols.symbolize(expected)?.name == "nopie_value")
    }
}
