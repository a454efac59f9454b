import Glibc

/// Shell completion of a PID argument: `self` and the pids under /proc (opendir(3) on
/// /proc, numeric names only), those starting with what is typed so far, in numeric order.
/// The completion scripts call the tool back for these (swift-argument-parser's custom
/// completion), so they list the processes running when <TAB> is pressed.
func pidCompletions(prefix: String) -> [String] {
    var pids: [Int32] = []
    if let dir = opendir("/proc") {
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let pid = Int32(name), pid > 0 { pids.append(pid) }
        }
    }
    return (["self"] + pids.sorted().map(String.init)).filter { $0.hasPrefix(prefix) }
}
