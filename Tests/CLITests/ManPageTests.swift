// The manual page (man/vmio-ptrace.1): it renders without a troff warning, and its synopsis
// lists every option the tool's own --help lists, subcommand by subcommand.

import Foundation
import Testing

/// The repository's root (this file is Tests/CLITests/ManPageTests.swift).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

@Suite struct ManPageTests {
    static let page = repositoryRoot.appendingPathComponent("man/vmio-ptrace.1").path

    /// `groff -man -ww -z` on each device man uses (terminal and PostScript), at the width man
    /// gives an 80-column terminal and at wider ones: every warning is printed, none may be.
    @Test(arguments: ["ascii", "utf8", "ps"], [nil, "100n", "150n"])
    func rendersWithoutWarnings(device: String, lineLength: String?) throws {
        let width = lineLength.map { ["-rLL=\($0)"] } ?? []
        let run = try Tool.runProgram(
            "/usr/bin/env", ["groff", "-man", "-T\(device)", "-ww", "-z"] + width + [Self.page])
        #expect(run.exited(0), "\(run)")
        #expect(run.stderr.isEmpty, "groff -T\(device) \(width): \(run.stderr)")
    }

    /// The page as `groff -Tascii` renders it: plain text (`\-` as `-`), without hyphenation
    /// (`-rHY=0`), so an option is never split across lines.
    static func rendered() throws -> [String] {
        let run = try Tool.runProgram(
            "/usr/bin/env", ["groff", "-man", "-Tascii", "-rHY=0", "-P-c", "-P-b", "-P-o", "-P-u", Self.page])
        guard run.exited(0) else { throw RenderError(message: "\(run)") }
        return run.lines
    }

    /// The synopsis, one entry a subcommand: `vmio-ptrace read PID …` with its continuation
    /// lines, under its name (the root's entries under "").
    static func synopsis(of lines: [String]) -> [String: String] {
        var entries: [String: String] = [:]
        var current: String?
        var inSynopsis = false
        for line in lines {
            if line.trimmingCharacters(in: .whitespaces).isEmpty {
                current = nil
                continue
            }
            if !line.hasPrefix(" ") {
                inSynopsis = line == "SYNOPSIS"
                continue
            }
            guard inSynopsis else { continue }
            let words = line.split(separator: " ").map(String.init)
            if line.hasPrefix("       vmio-ptrace ") {
                // `vmio-ptrace SUB …`, or `vmio-ptrace [help] …` / `vmio-ptrace --…` for the root.
                let name = words.count > 1 && !words[1].hasPrefix("-") && !words[1].hasPrefix("[") ? words[1] : ""
                current = name
                entries[name, default: ""] += line + "\n"
            } else if let name = current, !words.isEmpty {
                entries[name, default: ""] += line + "\n"
            } else {
                current = nil
            }
        }
        return entries
    }

    struct RenderError: Error { let message: String }

    /// Every option of every subcommand, from swift-argument-parser's own description of the
    /// command line (`--experimental-dump-help`), appears in that subcommand's synopsis
    /// entry (one of its names at least; every long name somewhere in the page).
    @Test func synopsisListsEveryOptionOfEverySubcommand() throws {
        let dump = try Tool.run("--experimental-dump-help")
        #expect(dump.exited(0), "\(dump)")
        let root = try #require(dump.json?["command"] as? [String: Any])
        let subcommands = try #require(root["subcommands"] as? [[String: Any]])
        let page = try Self.rendered()
        let entries = Self.synopsis(of: page)
        let text = page.joined(separator: "\n")
        var checked = 0
        for command in subcommands {
            let name = try #require(command["commandName"] as? String)
            if name == "help" { continue }  // shown in the root's entry
            let entry = try #require(entries[name], "no synopsis entry for \(name): \(entries.keys.sorted())")
            for argument in command["arguments"] as? [[String: Any]] ?? [] {
                let names = (argument["names"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
                if names.isEmpty || names.contains("help") || names == ["version"] { continue }  // every command's
                let spelled = names.map { $0.count == 1 ? "-" + $0 : "--" + $0 }
                #expect(
                    spelled.contains { Self.mentions(entry, $0) },
                    "the synopsis of \(name) lacks \(spelled.joined(separator: "/")):\n\(entry)")
                for long in spelled where long.hasPrefix("--") {
                    let mentioned = Self.mentions(text, long)
                    #expect(mentioned, "the page never mentions \(long) (of \(name))")
                }
                checked += 1
            }
        }
        #expect(checked > 50, "only \(checked) options checked: did the dump's shape change?")
        for flag in ["--help", "-h", "--version", "--generate-completion-script"] {
            #expect(Self.mentions(entries[""] ?? "", flag), "the root synopsis lacks \(flag)")
        }
    }

    /// `option` as a whole word of `text` (not `--stop` inside `--stop-all`).
    static func mentions(_ text: String, _ option: String) -> Bool {
        var searchStart = text.startIndex
        while let range = text.range(of: option, range: searchStart..<text.endIndex) {
            let before = range.lowerBound == text.startIndex ? nil : text[text.index(before: range.lowerBound)]
            let after = range.upperBound == text.endIndex ? nil : text[range.upperBound]
            let isPart: (Character?) -> Bool = { c in c.map { $0.isLetter || $0.isNumber || $0 == "-" } ?? false }
            if !isPart(before) && !isPart(after) { return true }
            searchStart = range.upperBound
        }
        return false
    }

    /// The test's own check: it finds an option that is missing (a test that cannot fail is a defect).
    @Test func mentionsIsAWholeWordMatch() {
        #expect(Self.mentions("[--stop] [--json]", "--stop"))
        #expect(!Self.mentions("[--stop-all]", "--stop"))
        #expect(!Self.mentions("[--nonstop]", "--stop"))
        #expect(Self.mentions("(--hex HEX | --u8 | --u16", "--u8"))
        #expect(!Self.mentions("--u16", "--u1"))
    }
}
