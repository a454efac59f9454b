// What the baselines are asked and what they answer: the C programs of Benchmarks/bench-c-*
// (built with -O2), gdb and scanmem.

import Foundation

/// The `seconds S` and `cpu S` lines a C baseline printed (each times its own work, without
/// start-up), one of each a repetition.
func reported(_ r: ChildResult) -> Samples {
    var samples = Samples()
    for line in r.output.split(separator: "\n") {
        if line.hasPrefix("seconds "), let s = Double(line.dropFirst(8)) { samples.wall.append(s) }
        if line.hasPrefix("cpu "), let s = Double(line.dropFirst(4)) { samples.cpu.append(s) }
    }
    return samples
}

/// bench-c-dump: process_vm_readv in 1 MiB calls and write(2) of each chunk to `file`; with
/// `sync`, fsync(2) of the file and its directory, as our dump does without --no-sync. With
/// `writeOnly`, no reads: the same warm buffer written `length` bytes over, the floor of the
/// writing alone.
func cDump(
    pid: pid_t, base: UInt64, length: UInt64, to file: String, sync: Bool = false, writeOnly: Bool = false
) -> ChildResult {
    let r = runChecked(
        [built("bench-c-dump"), String(pid), hex(base), String(length), file] + (sync ? ["--fsync"] : [])
            + (writeOnly ? ["--write-only"] : []),
        what: "bench-c-dump")
    removeAndSync(file)
    return r
}

/// `gdb -p PID -batch -ex COMMAND` that writes `file`: the run and the file's size, or nil
/// when the file has fewer than `length` bytes (gdb exits 0 on many failures). The file is
/// removed afterwards.
func gdbWriting(
    _ gdb: String, pid: pid_t, _ command: String, file: String, length: UInt64
) -> (result: ChildResult, size: UInt64)? {
    let r = run([gdb, "-p", String(pid), "-batch", "-ex", command])
    let size = fileSize(file)
    removeAndSync(file)
    guard size >= length else {
        let what = command.split(separator: " ").first ?? ""
        note("gdb \(what) failed (status \(r.status), file size \(size)):\n\(r.output)")
        return nil
    }
    return (r, size)
}

/// A scanmem script that runs the commands `scan` (a data type option and the value) over
/// only the region holding `address` (`dregion !ID` deletes every other one) and lists the
/// matches, or nil when scanmem lists no such region.
func scanmemScript(_ scanmem: String, pid: pid_t, holding address: UInt64, scan: String) -> String? {
    let r = run([scanmem, "-p", String(pid), "-c", "lregions;exit"])
    for line in r.output.split(separator: "\n") where line.hasPrefix("[") {
        // "[ 2] 7f98a0000000, 67108864 bytes,  misc, ..."
        let parts = line.split(separator: "]", maxSplits: 1)
        guard parts.count == 2, let id = Int(parts[0].dropFirst().trimmingCharacters(in: .whitespaces)) else {
            continue
        }
        let fields = parts[1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard fields.count >= 2, let start = UInt64(fields[0], radix: 16),
            let size = UInt64(fields[1].split(separator: " ").first ?? "")
        else { continue }
        if start <= address && address < start + size {
            return "dregion !\(id);\(scan);list;exit"
        }
    }
    note("scanmem: no region holds \(hex(address)); scanmem figures are n/a\n\(r.output)")
    return nil
}

/// The side of a comparison that runs scanmem's script (``scanmemScript(_:pid:holding:scan:)``)
/// and counts a run only when scanmem listed `expected`; nil without scanmem or its region.
func scanmemSide(
    _ scanmem: String?, pid: pid_t, holding address: UInt64, scan: String, expected: UInt64
) -> ((Bool) -> ChildResult?)? {
    guard let scanmem, let script = scanmemScript(scanmem, pid: pid, holding: address, scan: scan) else { return nil }
    let hitInScanmem = String(expected, radix: 16)
    return { _ in
        let r = run([scanmem, "-p", String(pid), "-c", script])
        guard r.status == 0 && r.output.contains(hitInScanmem) else {
            note("scanmem did not report \(hex(expected)) (status \(r.status)):\n\(r.output.suffix(2000))")
            return nil
        }
        return r
    }
}
