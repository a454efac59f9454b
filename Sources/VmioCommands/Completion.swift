import VmioPtrace

/// Shell completion of a PID argument: `self` and the pids under /proc (numeric names
/// only), those starting with what is typed so far, in numeric order. The completion
/// scripts call the tool back for these (swift-argument-parser's custom completion), so
/// they list the processes running when <TAB> is pressed.
func pidCompletions(prefix: String) -> [String] {
    (["self"] + ProcFS.processIDs().map(String.init)).filter { $0.hasPrefix(prefix) }
}
