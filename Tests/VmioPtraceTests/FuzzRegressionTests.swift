// Inputs found by the fuzz targets (Fuzz/, scripts/fuzz), kept as regression tests.

import Foundation
import Testing
import VmIO
import VmioPtrace

/// A manifest of the given regions (start, end), each with its own data file.
private func manifest(_ regions: [(String, String)]) -> Data {
    let items = regions.enumerated().map { i, r in
        """
        {"bytes_saved":0,"deleted":false,"device":"00:00","end":"\(r.1)","file":"000\(i)-region.bin",\
        "holes":[],"inode":0,"offset":"0x0","path":"","perms":"rw-p","start":"\(r.0)"}
        """
    }
    return Data(
        """
        {"complete":true,"format":"vmio-dump\\/1","pid":1,"stopped":false,"regions":[\(items.joined(separator: ","))]}
        """.utf8)
}

@Test func manifestWithOverlappingRegionsIsRejected() throws {
    // fuzz-manifest: a region repeated (or overlapping the one before) was accepted, so
    // restore wrote bytes twice and its byte total could overflow (two full-range regions).
    for regions in [
        [("0x1000", "0x3000"), ("0x2000", "0x4000")],
        [("0x5000", "0x6000"), ("0x1000", "0x2000")],
        [("0x0", "0xffffffffffffffff"), ("0x0", "0xffffffffffffffff")],
    ] {
        #expect(throws: DumpError.self) { try DumpManifest.decode(manifest(regions), path: "m.json") }
    }
}

@Test func manifestWithAscendingRegionsStillLoads() throws {
    let m = try DumpManifest.decode(
        manifest([("0x1000", "0x2000"), ("0x2000", "0x3000"), ("0x8000", "0x9000")]), path: "m.json")
    #expect(m.regions.count == 3)
}
