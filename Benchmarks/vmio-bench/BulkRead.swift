// Item 1: the library's bulk read (Target.stream, in this process) against bench-c-read.

import Glibc
import VmIO
import VmioPtrace

extension Bench {
    mutating func bulkRead(pid: pid_t, base: UInt64, length: UInt64) {
        let cRead = built("bench-c-read")
        let cChunks = [1 << 20, 4 << 20, 16 << 20]
        let ourChunks = [1 << 20, 16 << 20]
        var c = [Int: Samples](), ours = [Int: Samples]()
        let range: AddressRange
        do { range = try AddressRange(start: base, count: length) } catch { die("\(error)") }
        let sides = cChunks.map { (true, $0) } + ourChunks.map { (false, $0) }
        interleaved(sides.count) { k, counted in
            let (isC, chunk) = sides[k]
            if isC {
                let r = runChecked(
                    [cRead, String(pid), hex(base), String(length), String(chunk)], what: "bench-c-read")
                let samples = reported(r)
                if counted {
                    c[chunk, default: Samples()].wall += samples.wall
                    c[chunk, default: Samples()].cpu += samples.cpu
                }
            } else {
                let target: Target
                do { target = try Target(pid: pid) } catch { die("Target(pid:): \(error)") }
                let (t, cpu) = (now(), cpuNow())
                let report: TransferReport
                do { report = try target.stream(range, skipFaults: false, chunkSize: chunk) { _, _ in true } } catch {
                    die("stream: \(error)")
                }
                let (elapsed, used) = (now() - t, cpuNow() - cpu)
                guard report.isComplete, report.moved == length else {
                    die("stream moved \(report.moved) of \(length)")
                }
                if counted { ours[chunk, default: Samples()].append(wall: elapsed, cpu: used) }
            }
        }
        let cBest = c.min { $0.value.wallMedian < $1.value.wallMedian }!
        let oBest = ours.min { $0.value.wallMedian < $1.value.wallMedian }!
        ratioRow(
            "1 library bulk read \(length >> 20) MiB (Target.stream)", ours: oBest.value, baseline: cBest.value,
            label: "C @\(cBest.key >> 20)M", target: ">= 1.0x", atLeast: 1.0, suffix: " @\(oBest.key >> 20)M")
        func byChunk(_ samples: [Int: Samples], _ chunks: [Int]) -> String {
            chunks.map { chunk in
                let time = samples[chunk]!.wallMedian
                return "\(chunk >> 20) MiB \(seconds(time)) (\(gbps(length, time)))"
            }.joined(separator: ", ")
        }
        details.append("1: C process_vm_readv by chunk: " + byChunk(c, cChunks))
        details.append("1: Target.stream by chunk:     " + byChunk(ours, ourChunks))
    }
}
