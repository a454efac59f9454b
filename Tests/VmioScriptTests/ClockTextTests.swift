// The time of a watch or break hit's line (`HH:MM:SS.uuuuuu`, UTC), made digit by digit for
// speed: checked against gmtime_r and a formatted string on random and edge times.

import Foundation
import Testing

@testable import VmioCommands

#if canImport(Glibc)
    import Glibc
#endif

struct ClockTextTests {
    func reference(_ nanoseconds: UInt64) -> String {
        var seconds = time_t(nanoseconds / 1_000_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%02d:%02d:%02d.%06d", parts.tm_hour, parts.tm_min, parts.tm_sec,
            Int32(nanoseconds / 1_000 % 1_000_000))
    }

    @Test func clockTextMatchesGmtime() {
        var generator = SystemRandomNumberGenerator()
        let edges: [UInt64] = [
            0, 999, 1_000, 59_999_999_999, 86_399_999_999_999, 86_400_000_000_000, 1_796_000_000_123_456_789,
        ]
        let randoms = (0..<2_000).map { _ in UInt64.random(in: 0...4_000_000_000_000_000_000, using: &generator) }
        for nanoseconds in edges + randoms {
            #expect(clockText(nanoseconds) == reference(nanoseconds), "\(nanoseconds)")
        }
    }
}
