// Fuzzes the restore manifest: DumpManifest.decode.
// Invariants: decode throws DumpError.badManifest or gives a manifest of the current
// format whose regions are ranges with data files inside the directory, sorted and
// disjoint, so restore's byte totals cannot overflow.
import Foundation
import VmIO
import VmioPtrace

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    let manifest: DumpManifest
    do {
        manifest = try DumpManifest.decode(bytes, path: "fuzz/manifest.json")
    } catch let error as DumpError {
        guard case .badManifest = error else { fatalError("decode threw \(error)") }
        return 0
    } catch {
        fatalError("decode threw a non-DumpError \(error)")
    }
    check(manifest.format == DumpManifest.currentFormat, "format \(manifest.format) accepted")
    var total: UInt64 = 0
    var previousEnd: UInt64 = 0
    for (i, region) in manifest.regions.enumerated() {
        guard let range = region.range else { fatalError("invariant violated: region \(i) is not a range") }
        check(
            !region.file.isEmpty && !region.file.contains("/") && !region.file.hasPrefix("."),
            "data file \(region.file.debugDescription) leaves the directory")
        check(i == 0 || range.start >= previousEnd, "region \(i) overlaps or precedes the one before")
        previousEnd = range.end
        let (t, o) = total.addingReportingOverflow(range.count)
        check(!o, "total size of the regions overflows")
        total = t
        // What restore does with the other fields: holes as ranges, perms as a Mapping.
        for h in region.holes {
            _ = parseNumber(h.address[...]).flatMap { try? AddressRange(start: $0, count: h.length) }
        }
        _ = RegionSelector.select([.anonymous], in: .empty)
        _ = Mapping(range: range, permissions: .readWrite, path: region.path).description
    }
    return 0
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant violated: " + message()) }
}
