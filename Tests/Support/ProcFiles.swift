// Test support: what the tests read of /proc about a fixture process. The fixture client
// itself (Fixtures.launch, FixtureProcess) is the VmioFixtures module, shared with the demo
// and the benchmarks.

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The whole of a /proc file, read until EOF (procfs files report size 0, and
/// `String(contentsOfFile:)` may stop early on them); nil if it cannot be opened.
public func readProcFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { return nil }
        if n == 0 { break }
        data.append(contentsOf: chunk[0..<n])
    }
    return String(decoding: data, as: UTF8.self)
}

/// /proc/PID/status as `key -> value` (e.g. `"State" -> "S (sleeping)"`, `"TracerPid" -> "0"`),
/// values trimmed. Empty if the process does not exist.
public func procStatus(_ pid: Int32) -> [String: String] {
    guard let text = readProcFile("/proc/\(pid)/status") else { return [:] }
    var result: [String: String] = [:]
    for line in text.split(separator: "\n") {
        guard let colon = line.firstIndex(of: ":") else { continue }
        result[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return result
}

/// One line of /proc/PID/maps.
public struct ProcMapsLine: Sendable, Equatable {
    public var start: UInt64
    public var end: UInt64
    public var perms: String  // e.g. "r-xp"
    public var offset: UInt64
    public var path: String  // "" for anonymous, "[heap]", a file path, ...

    public func contains(_ address: UInt64) -> Bool { start <= address && address < end }
}

/// /proc/PID/maps parsed; empty if the process does not exist.
public func procMapsLines(_ pid: Int32) -> [ProcMapsLine] {
    guard let text = readProcFile("/proc/\(pid)/maps") else { return [] }
    return text.split(separator: "\n").compactMap { line in
        let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
        guard fields.count >= 5 else { return nil }
        let range = fields[0].split(separator: "-")
        guard range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16),
            let offset = UInt64(fields[2], radix: 16)
        else { return nil }
        let path = fields.count > 5 ? fields[5].trimmingCharacters(in: .whitespaces) : ""
        return ProcMapsLine(start: start, end: end, perms: String(fields[1]), offset: offset, path: path)
    }
}

/// `count` bytes of a process's memory at `address`, read through /proc/PID/mem (not through
/// the code under test); nil if they cannot all be read.
public func procMemory(_ pid: Int32, at address: UInt64, count: Int) -> Data? {
    let fd = open("/proc/\(pid)/mem", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes = Data(count: count)
    var done = 0
    while done < count {
        let n = bytes.withUnsafeMutableBytes {
            pread(fd, $0.baseAddress! + done, count - done, off_t(Int64(bitPattern: address &+ UInt64(done))))
        }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return nil }
        done += n
    }
    return bytes
}
