// Item 1: the library's bulk read (Target.stream, in this process) against bench-c-read.

import Glibc
import VmIO
import VmioPtrace

extension Bench {
    mutating func bulkRead(pid: pid_t, base: UInt64, length: UInt64) {
        note("1/4 bulk read")
        let cRead = built("bench-c-read")
        let cChunks = [1 << 20, 4 << 20, 16 << 20]
        let ourChunks = [1 << 20, 16 << 20]
        var c = [Int: [Double]](), ours = [Int: [Double]]()
        let range: AddressRange
        do { range = try AddressRange(start: base, count: length) } catch { die("\(error)") }
        let sides = cChunks.map { (true, $0) } + ourChunks.map { (false, $0) }
        interleaved(sides.count) { k, counted in
            let (isC, chunk) = sides[k]
            if isC {
                let r = runChecked(
                    [cRead, String(pid), hex(base), String(length), String(chunk)], what: "bench-c-read")
                if counted { c[chunk, default: []] += reportedSeconds(r) }
            } else {
                let target: Target
                do { target = try Target(pid: pid) } catch { die("Target(pid:): \(error)") }
                let t = now()
                let report: TransferReport
                do { report = try target.stream(range, skipFaults: false, chunkSize: chunk) { _, _ in true } } catch {
                    die("stream: \(error)")
                }
                let elapsed = now() - t
                guard report.isComplete, report.moved == length else {
                    die("stream moved \(report.moved) of \(length)")
                }
                if counted { ours[chunk, default: []] += [elapsed] }
            }
        }
        let cBest = c.map { ($0.key, median($0.value)) }.min { $0.1 < $1.1 }!
        let oBest = ours.map { ($0.key, median($0.value)) }.min { $0.1 < $1.1 }!
        rows.append(
            Row(
                name: "1 library bulk read \(length >> 20) MiB (Target.stream)",
                ours: "\(seconds(oBest.1)) \(gbps(length, oBest.1)) @\(oBest.0 >> 20)M",
                baseline: "\(seconds(cBest.1)) \(gbps(length, cBest.1)) @\(cBest.0 >> 20)M (C)",
                ratio: cBest.1 / oBest.1, target: ">= 0.90x", pass: cBest.1 / oBest.1 >= 0.9))
        details.append(
            "1: C process_vm_readv by chunk: "
                + cChunks.map { "\($0 >> 20) MiB \(seconds(median(c[$0]!))) (\(gbps(length, median(c[$0]!))))" }.joined(
                    separator: ", "))
        details.append(
            "1: Target.stream by chunk:     "
                + ourChunks.map { "\($0 >> 20) MiB \(seconds(median(ours[$0]!))) (\(gbps(length, median(ours[$0]!))))" }
                .joined(separator: ", "))
    }
}
