// Fuzzes the session language: Parser.parse on each line of the input.
// Invariant: every line gives a Statement or a ScriptError whose line is the line
// given and whose column lies within the line (1 ... characters + 1).
import VmIO
import VmioCommands
import VmioScript

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let line = String(line)
        do {
            _ = try Parser.parse(line, line: i + 1)
        } catch {
            check(error.line == i + 1, "error names line \(error.line), not \(i + 1): \(error)")
            let width = Array(line).count
            check(
                error.column >= 1 && error.column <= width + 1,
                "column \(error.column) outside 1...\(width + 1) in \(line.debugDescription): \(error)")
        }
        _ = parseDuration(line)
    }
    return 0
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant violated: " + message()) }
}
