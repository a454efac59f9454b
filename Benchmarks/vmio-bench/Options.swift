// The command line of vmio-bench.

import Foundation
import Glibc

struct Options {
    var reps = 9
    var mib: UInt64 = 1024
    /// Seed 4 puts the needle at 93 % of a 1 GiB buffer, so a search that stops at the
    /// first hit still reads nearly all of it (like scanmem, which always reads all).
    var seed: UInt64 = 4
    var maps = 10000
    /// The real disk's directory for output files (the dump's second row, the hex dump's file).
    var tmp = NSTemporaryDirectory()
    /// A tmpfs for the output files of the dump and core rows, so the disk's write-back is not
    /// what is measured: /dev/shm when it is one; `--tmpfs none` for none.
    var tmpfs: String? = isTmpfs("/dev/shm") ? "/dev/shm" : nil
    var gdb = true
    var scanmem = true
    /// Which items to run (1 bulk read, 2 dump, 3 maps + scattered reads, 4 search, 6 core,
    /// 7 hex dump, 8 sessions, 9 scan and diff); 5 comes with 2 and 4.
    var only: Set<Int> = [1, 2, 3, 4, 6, 7, 8, 9]
    /// MiB of the random fixture's buffer item 7 prints as a hex dump.
    var hexMiB: UInt64 = 100

    init(_ args: [String]) {
        var it = args.makeIterator()
        func value(_ flag: String) -> String {
            guard let v = it.next() else { die("\(flag) needs a value") }
            return v
        }
        while let a = it.next() {
            switch a {
            case "--reps": reps = Int(value(a)) ?? 0
            case "--mib": mib = UInt64(value(a)) ?? 0
            case "--seed": seed = UInt64(value(a)) ?? 0
            case "--maps": maps = Int(value(a)) ?? 0
            case "--tmp": tmp = value(a)
            case "--tmpfs":
                let dir = value(a)
                tmpfs = dir == "none" ? nil : dir
                if let tmpfs, !isTmpfs(tmpfs) { die("--tmpfs \(tmpfs): not a tmpfs") }
            case "--no-gdb": gdb = false
            case "--no-scanmem": scanmem = false
            case "--only": only = Set(value(a).split(separator: ",").compactMap { Int($0) })
            case "--hex-mib": hexMiB = UInt64(value(a)) ?? 0
            case "-h", "--help":
                emit(
                    "usage: vmio-bench [--reps N] [--mib N] [--seed N] [--maps N] [--tmp DIR] [--tmpfs DIR|none] "
                        + "[--no-gdb] [--no-scanmem] [--only 1,2,3,4,6,7,8,9] [--hex-mib N]"
                )
                exit(0)
            default: die("unknown argument \(a) (try --help)")
            }
        }
        guard reps >= 1, mib >= 1, maps >= 1, hexMiB >= 1 else {
            die("--reps, --mib, --maps and --hex-mib must be at least 1")
        }
    }
}

/// Whether `path` is a writable directory whose mount (the longest mount point above it in
/// /proc/self/mounts) is a tmpfs.
func isTmpfs(_ path: String) -> Bool {
    guard access(path, W_OK) == 0, let mounts = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)
    else { return false }
    let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
    var best: (point: String, type: String) = ("", "")
    for line in mounts.split(separator: "\n") {
        let fields = line.split(separator: " ")
        guard fields.count > 2 else { continue }
        let point = String(fields[1])
        let above = point == "/" || resolved == point || resolved.hasPrefix(point + "/")
        if above && point.count >= best.point.count { best = (point, String(fields[2])) }
    }
    return best.type == "tmpfs"
}
