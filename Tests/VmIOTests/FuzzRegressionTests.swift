// Inputs found by the fuzz targets (Fuzz/, scripts/fuzz), kept as regression tests.

import Testing

@testable import VmIO

@Test func carriageReturnBeforeEscapedNewlineRoundTrips() throws {
    // fuzz-maps: a path holding "\r" then "\012" decoded to "\r\n", one Character, which
    // `description` compared with "\n" and so printed raw: the line no longer re-parsed.
    let m = try MapsParser.parseLine("7f00-7f01 rw-p 0 0:0 1 /a\r\\012b")
    #expect(m.path == "/a\r\nb")
    #expect(!m.description.contains("\n"))
    #expect(try MapsParser.parseLine(m.description) == m)
}
