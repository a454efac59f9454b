// Fuzzes MapsParser: whole texts and single lines.
// Invariants: a parse either throws VmIoError.mapsSyntax (line and column in range) or
// an ordering error, or gives a sorted, disjoint view; every mapping's description
// re-parses to the same mapping; parseLine agrees with the whole-text parse.
import VmIO

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let lineCount = bytes.reduce(1) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
    do {
        let mappings = try MapsParser.parseMappings(bytes)
        for m in mappings {
            check(m.range.isWellFormed, "mapping \(m) is not well formed")
            let again: Mapping
            do { again = try MapsParser.parseLine(m.description) } catch {
                fatalError(
                    "description of a parsed mapping does not re-parse: \(m.description.debugDescription): \(error)")
            }
            check(again == m, "round trip changed \(m.description.debugDescription): \(again) != \(m)")
        }
        do {
            let view = try MapsParser.parse(bytes: bytes)
            check(view.mappings == mappings, "parse(bytes:) and parseMappings disagree")
            check(view.mappingsAreDisjoint, "view is not sorted and disjoint")
            for m in view.mappings where !m.range.isEmpty {
                check(
                    view.index(containing: m.start).map { view.mappings[$0] } == m,
                    "lookup of \(m.start) misses its mapping")
            }
        } catch {
            switch error {
            case .mappingsOverlap, .mappingsUnsorted, .invalidRange: break
            default: fatalError("unexpected error from a view of parsed mappings: \(error)")
            }
        }
    } catch {
        guard case .mapsSyntax(let line, let column, _) = error else { fatalError("unexpected error \(error)") }
        check(line >= 1 && line <= lineCount, "error line \(line) out of 1...\(lineCount)")
        check(column >= 1 && column <= size + 1, "error column \(column) out of range")
    }
    // The String entry point: one line of the text, as parseLine sees it.
    let text = String(decoding: bytes, as: UTF8.self)
    if let firstLine = text.split(separator: "\n", omittingEmptySubsequences: false).first {
        _ = try? MapsParser.parseLine(String(firstLine), lineNumber: 3)
        _ = try? MapsParser.parse(String(firstLine))
    }
    return 0
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant violated: " + message()) }
}
