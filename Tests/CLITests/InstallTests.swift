// Installed like a real tool: scripts/install into a temporary prefix (the tool runs, `man`
// reads its page, bash, zsh and fish complete it, the demo finds its fixture), then
// scripts/uninstall; and the Debian package of scripts/package (its fields, its files, its
// dependencies against what the binary links, and the binary running in a root that holds
// nothing but those dependencies — no Swift toolchain).
//
// Both scripts make a release build (scripts/build-release, scratch path .build-release):
// minutes the first time, seconds when it is up to date. The suite is serialized so that
// the build runs once.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.serialized) struct InstallTests {
    static let scripts = repositoryRoot.appendingPathComponent("scripts")
    /// A release build from clean takes minutes, more on a loaded machine.
    static let buildTimeout: TimeInterval = 1800

    /// Where each file goes under a prefix other than /usr.
    static let installed = [
        "bin/vmio-ptrace", "libexec/vmio-ptrace/vmio-fixture-holder", "share/man/man1/vmio-ptrace.1",
        "share/bash-completion/completions/vmio-ptrace", "share/zsh/site-functions/_vmio-ptrace",
        "share/fish/vendor_completions.d/vmio-ptrace.fish",
    ]

    /// Every regular file under `directory`, relative to it, sorted.
    static func files(under directory: URL) -> [String] {
        let walker = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: [.isRegularFileKey])
        let base = directory.resolvingSymlinksInPath().path + "/"
        return
            (walker?.compactMap { item -> String? in
                guard let url = item as? URL,
                    (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true
                else { return nil }
                return String(url.resolvingSymlinksInPath().path.dropFirst(base.count))
            } ?? []).sorted()
    }

    /// Runs a shell command line (bash -c) with `environment` added.
    static func shell(_ command: String, _ environment: [String] = [], timeout: TimeInterval = 120) throws -> RunResult
    {
        try Tool.runProgram("/usr/bin/env", environment + ["bash", "-c", command], timeout: timeout)
    }

    @Test func installRunsAndUninstallRemovesEverything() throws {
        let work = try temporaryDirectory("vmio-install")
        defer { try? FileManager.default.removeItem(at: work) }
        let prefix = work.appendingPathComponent("prefix")
        let version = try VersionTests.written()

        // An option is not a prefix: usage, status 64, nothing built or installed.
        for script in ["install", "uninstall", "package"] {
            let usage = try Tool.runProgram(Self.scripts.appendingPathComponent(script).path, ["--help"])
            #expect(usage.exited(64) && usage.stderr.hasPrefix("usage: scripts/\(script) "), "\(usage)")
        }

        let install = try Tool.runProgram(
            Self.scripts.appendingPathComponent("install").path, [prefix.path], timeout: Self.buildTimeout)
        #expect(install.exited(0), "\(install)")
        #expect(install.lines.last == "vmio-ptrace \(version) installed under \(prefix.path)", "\(install.lines)")
        #expect(Self.files(under: prefix) == Self.installed.sorted())
        let bin = prefix.appendingPathComponent("bin")
        let tool = bin.appendingPathComponent("vmio-ptrace").path

        // The installed binary runs, on a real process, and needs no Swift toolchain.
        #expect(try Tool.runProgram(tool, ["--version"]).stdoutText == version + "\n")
        let holder = try Fixtures.launch(.holder)
        let maps = try Tool.runProgram(tool, ["maps", String(holder.pid)])
        #expect(maps.exited(0) && maps.lines.contains { $0.hasSuffix("/vmio-fixture-holder") }, "\(maps)")
        let ldd = try Tool.runProgram("/usr/bin/ldd", [tool])
        #expect(ldd.exited(0) && !ldd.stdoutText.contains("not found"), "\(ldd)")
        #expect(!ldd.stdoutText.contains("libswift") && !ldd.stdoutText.contains("libFoundation"), "\(ldd)")

        // man reads the installed page, by path and by name under the prefix.
        let page = prefix.appendingPathComponent("share/man/man1/vmio-ptrace.1").path
        for arguments in [["-l", page], ["-M", prefix.appendingPathComponent("share/man").path, "vmio-ptrace"]] {
            let man = try Tool.runProgram(
                "/usr/bin/env", ["MANPAGER=cat", "MANWIDTH=80", "LC_ALL=C.UTF-8", "man"] + arguments)
            #expect(man.exited(0) && man.stderr.isEmpty, "man \(arguments): \(man)")
            #expect(man.lines.contains("SYNOPSIS"), "\(man.lines.prefix(10))")
            #expect(man.lines.last?.hasPrefix("vmio-ptrace \(version) ") == true, "footer: \(man.lines.last ?? "")")
        }

        // Each shell completes the installed tool from where its scripts were put.
        try ShellCompletion.checkBash(
            script: prefix.appendingPathComponent("share/bash-completion/completions/vmio-ptrace"), binDirectory: bin)
        try ShellCompletion.checkZsh(
            functionDirectory: prefix.appendingPathComponent("share/zsh/site-functions"), binDirectory: bin)
        try ShellCompletion.checkFish(
            dataDirectory: prefix.appendingPathComponent("share"), script: nil, binDirectory: bin)

        // The demo finds the fixture installed under libexec.
        let demo = try Tool.runProgram("/usr/bin/env", ["-C", work.path, tool, "demo"], timeout: 120)
        #expect(demo.exited(0), "\(demo)")
        #expect(demo.lines.last?.contains("nothing is left running") == true, "\(demo.lines.suffix(3))")

        let uninstall = try Tool.runProgram(Self.scripts.appendingPathComponent("uninstall").path, [prefix.path])
        #expect(uninstall.exited(0) && uninstall.lines.count == Self.installed.count, "\(uninstall)")
        #expect(Self.files(under: prefix) == [])
        let again = try Tool.runProgram(Self.scripts.appendingPathComponent("uninstall").path, [prefix.path])
        #expect(again.exited(0) && again.lines.isEmpty, "\(again)")
    }

    @Test func debianPackageInstallsWithItsDependenciesAlone() throws {
        let work = try temporaryDirectory("vmio-package")
        defer { try? FileManager.default.removeItem(at: work) }
        let version = try VersionTests.written()
        let package = try Tool.runProgram(
            Self.scripts.appendingPathComponent("package").path, [work.path], timeout: Self.buildTimeout)
        #expect(package.exited(0), "\(package)")
        let deb = work.appendingPathComponent("vmio-ptrace_\(version)_amd64.deb").path
        #expect(package.lines.last == deb, "\(package.lines)")

        // The control fields.
        let fields = try Tool.runProgram(
            "/usr/bin/dpkg-deb", ["-f", deb, "Package", "Version", "Architecture", "Depends"])
        let control = Dictionary(
            fields.lines.compactMap { line -> (String, String)? in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }, uniquingKeysWith: { a, _ in a })
        #expect(control["Package"] == "vmio-ptrace" && control["Version"] == version, "\(fields)")
        #expect(control["Architecture"] == "amd64", "\(fields)")
        let depends = Set(
            (control["Depends"] ?? "").split(separator: ",").map {
                String($0.trimmingCharacters(in: .whitespaces).prefix { $0 != " " && $0 != "(" })
            })

        // The files, where Debian's programs look for them.
        let contents = try Tool.runProgram("/usr/bin/dpkg-deb", ["-c", deb])
        let paths = Set(contents.lines.compactMap { $0.split(separator: " ").last.map(String.init) })
        for path in [
            "./usr/bin/vmio-ptrace", "./usr/libexec/vmio-ptrace/vmio-fixture-holder",
            "./usr/share/man/man1/vmio-ptrace.1.gz", "./usr/share/bash-completion/completions/vmio-ptrace",
            "./usr/share/zsh/vendor-completions/_vmio-ptrace", "./usr/share/fish/vendor_completions.d/vmio-ptrace.fish",
            "./usr/share/doc/vmio-ptrace/copyright",
        ] {
            #expect(paths.contains(path), "\(path) not in the package: \(contents.stdoutText)")
        }

        // Every library the binaries link directly (NEEDED) belongs to a package of Depends,
        // and none is the Swift runtime.
        let root = work.appendingPathComponent("root")
        let extract = try Tool.runProgram("/usr/bin/dpkg-deb", ["-x", deb, root.path])
        #expect(extract.exited(0), "\(extract)")
        let binaries = ["usr/bin/vmio-ptrace", "usr/libexec/vmio-ptrace/vmio-fixture-holder"]
        for binary in binaries {
            let path = root.appendingPathComponent(binary).path
            let libraries = try Self.neededLibraries(path)
            #expect(!libraries.isEmpty)
            for library in libraries {
                #expect(!library.hasPrefix("libswift") && !library.hasPrefix("libFoundation"), "\(binary): \(library)")
                let owner = try Self.owningPackage(library: library, of: path)
                #expect(depends.contains(owner), "\(binary) links \(library) of \(owner), not in Depends \(depends)")
            }
        }

        // The package's files in a root holding only the files of the Depends packages (and
        // theirs, recursively): the binary runs there — no toolchain, nothing undeclared.
        let chroot = work.appendingPathComponent("chroot")
        let closure = try Self.shell(
            Self.dependencyRoot, ["ROOT=" + chroot.path, "DEPENDS=" + depends.joined(separator: " ")])
        #expect(closure.exited(0), "\(closure)")
        #expect(try Tool.runProgram("/usr/bin/dpkg-deb", ["-x", deb, chroot.path]).exited(0))
        let inside = try Self.shell(
            Self.inChroot, ["ROOT=" + chroot.path], timeout: 180)
        #expect(inside.exited(0), "\(inside)")
        #expect(inside.lines.first == version, "\(inside.lines.prefix(3))")
        #expect(inside.lines.contains { $0.hasSuffix(" /usr/bin/vmio-ptrace") }, "maps self: \(inside.lines.prefix(5))")
        #expect(inside.lines.last?.contains("nothing is left running") == true, "\(inside.lines.suffix(3))")
        // The control: the test's debug build, which loads the Swift runtime from the
        // toolchain, does not run there. Copied by cp, not by this process: a process of the
        // parallel suite forked while this one held the copy open for writing would make its
        // exec fail with ETXTBSY ('Text file busy', status 126) instead.
        let debug = try Self.shell(
            #"cp "$TOOL" "$ROOT/debug-tool" && "#
                + "unshare -m --propagation private sh -c 'mount -t proc proc \"$ROOT/proc\" && chroot \"$ROOT\" /debug-tool --version'",
            ["ROOT=" + chroot.path, "TOOL=" + Tool.path])
        #expect(!debug.exited(0) && debug.stderr.contains("libswift"), "\(debug)")
    }

    /// The NEEDED entries of an ELF file's dynamic section (objdump -p).
    static func neededLibraries(_ path: String) throws -> [String] {
        let run = try Tool.runProgram("/usr/bin/objdump", ["-p", path])
        guard run.exited(0) else { throw ShellError(message: "objdump: \(run)") }
        return run.lines.compactMap { line in
            let words = line.split(separator: " ")
            return words.count == 2 && words[0] == "NEEDED" ? String(words[1]) : nil
        }
    }

    /// The package (`dpkg -S`) owning the file a library name resolves to for `binary` (ldd).
    static func owningPackage(library: String, of binary: String) throws -> String {
        // `\tlibelf.so.1 => /lib/…/libelf.so.1 (0x…)`, or the loader: `\t/lib64/ld-linux-x86-64.so.2 (0x…)`.
        let ldd = try Tool.runProgram("/usr/bin/ldd", [binary])
        let resolved = ldd.lines.compactMap { line -> String? in
            let words = line.split(separator: " ").map { $0.trimmingCharacters(in: .whitespaces) }
            if words.count >= 3, words[0] == library, words[1] == "=>" { return words[2] }
            if let first = words.first, first.hasPrefix("/"), first.hasSuffix("/" + library) { return first }
            return nil
        }
        guard let path = resolved.first, path.hasPrefix("/") else {
            throw ShellError(message: "ldd does not resolve \(library): \(ldd)")
        }
        // Merged /usr: dpkg may know the file as /lib/… or /usr/lib/….
        let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        let candidates = [path, real, real.hasPrefix("/usr/") ? String(real.dropFirst(4)) : "/usr" + real]
        for candidate in candidates {
            let search = try Tool.runProgram("/usr/bin/dpkg", ["-S", candidate])
            if search.exited(0), let first = search.lines.first, let colon = first.firstIndex(of: ":") {
                return String(first[..<colon])
            }
        }
        throw ShellError(message: "no package owns \(path)")
    }

    /// Fills $ROOT with the files of the packages $DEPENDS and, recursively, of their own
    /// Depends and Pre-Depends (the first installed of each alternative), as dpkg lists them.
    static let dependencyRoot = #"""
        set -euo pipefail
        declare -A seen
        queue=($DEPENDS)
        while [ ${#queue[@]} -gt 0 ]; do
            pkg=${queue[0]}; queue=("${queue[@]:1}")
            [ -n "${seen[$pkg]:-}" ] && continue
            seen[$pkg]=1
            deps=$(dpkg-query -W -f='${Pre-Depends}, ${Depends}' "$pkg:amd64" 2>/dev/null \
                || dpkg-query -W -f='${Pre-Depends}, ${Depends}' "$pkg")
            IFS=',' read -ra items <<< "$deps"
            for item in "${items[@]}"; do
                IFS='|' read -ra alternatives <<< "$item"
                for alternative in "${alternatives[@]}"; do
                    name=$(echo "$alternative" | sed 's/(.*//; s/:any//' | tr -d ' ')
                    [ -z "$name" ] && continue
                    if dpkg -s "$name" >/dev/null 2>&1; then queue+=("$name"); break; fi
                done
            done
        done
        mkdir -p "$ROOT"/{proc,dev,tmp,usr}
        # The host's merged /usr: /lib is a symlink to usr/lib, and so on.
        for dir in bin sbin lib lib32 lib64 libx32; do
            if [ -L "/$dir" ]; then ln -s "$(readlink "/$dir")" "$ROOT/$dir"; mkdir -p "$ROOT$(readlink -f "/$dir")"; fi
        done
        for pkg in "${!seen[@]}"; do
            { dpkg -L "$pkg:amd64" 2>/dev/null || dpkg -L "$pkg"; } | while read -r file; do
                # Files and symlinks to files; directories (/lib is a symlink to one) are made as needed.
                if [ ! -d "$file" ] && { [ -f "$file" ] || [ -L "$file" ]; }; then
                    mkdir -p "$ROOT$(dirname "$file")" && cp -a "$file" "$ROOT$file"
                fi
            done
        done
        # Device nodes of its own (a bind mount of /dev could be deleted through with the root).
        mknod -m 666 "$ROOT/dev/null" c 1 3
        mknod -m 666 "$ROOT/dev/zero" c 1 5
        mknod -m 666 "$ROOT/dev/urandom" c 1 9
        echo "root of: ${!seen[*]}"
        """#

    /// Runs the packaged tool in $ROOT, with a /proc of its own in a private mount namespace
    /// (gone when the command ends): the version, `maps self`, and the demo (which runs the
    /// packaged fixture).
    static let inChroot = #"""
        set -euo pipefail
        exec unshare -m --propagation private sh -c '
            set -e
            mount -t proc proc "$ROOT/proc"
            chroot "$ROOT" /usr/bin/vmio-ptrace --version
            chroot "$ROOT" /usr/bin/vmio-ptrace maps self
            chroot "$ROOT" /usr/bin/vmio-ptrace demo 2>&1'
        """#
}
