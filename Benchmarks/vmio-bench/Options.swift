// The command line of vmio-bench.

import Foundation

struct Options {
    var reps = 5
    var mib: UInt64 = 1024
    /// Seed 4 puts the needle at 93 % of a 1 GiB buffer, so a search that stops at the
    /// first hit still reads nearly all of it (like scanmem, which always reads all).
    var seed: UInt64 = 4
    var maps = 10000
    var tmp = NSTemporaryDirectory()
    var gdb = true
    var scanmem = true
    /// Which items to run (1 bulk read, 2 dump, 3 maps + scattered reads, 4 search, 6 core,
    /// 7 hex dump); 5 comes with 2 and 4.
    var only: Set<Int> = [1, 2, 3, 4, 6, 7]
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
            case "--no-gdb": gdb = false
            case "--no-scanmem": scanmem = false
            case "--only": only = Set(value(a).split(separator: ",").compactMap { Int($0) })
            case "--hex-mib": hexMiB = UInt64(value(a)) ?? 0
            case "-h", "--help":
                emit(
                    "usage: vmio-bench [--reps N] [--mib N] [--seed N] [--maps N] [--tmp DIR] [--no-gdb] "
                        + "[--no-scanmem] [--only 1,2,3,4,6,7] [--hex-mib N]"
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
