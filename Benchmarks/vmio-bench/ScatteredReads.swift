// Item 3: the maps of the many-maps fixture parsed, and 4 KiB read from each mapping in
// scattered process_vm_readv calls, in this process, against bench-c-scatter.

import Foundation
import Glibc
import VmIO
import VmioPtrace

extension Bench {
    /// Where `ProcessMaps.read` spends its time: reading the file (ProcFS.readAll, and a
    /// bare read(2) loop into a reused buffer for comparison), parsing the lines
    /// (MapsParser.parseMappings), and building the checked view (MemView(mappings:)).
    func parseBreakdown(pid: pid_t) -> String {
        let path = "/proc/\(pid)/maps"
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: 8 << 20, alignment: 16)
        raw.initializeMemory(as: UInt8.self, repeating: 0)
        defer { raw.deallocate() }
        var bare: [Double] = [], readAll: [Double] = [], parse: [Double] = [], view: [Double] = []
        for i in 0..<(4 * opts.reps + 1) {
            var t = now()
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            var len = 0
            while true {
                let n = read(fd, raw.baseAddress! + len, raw.count - len)
                if n <= 0 { break }
                len += n
            }
            close(fd)
            let tBare = now() - t
            t = now()
            let bytes: [UInt8]
            do { bytes = try ProcFS.readAll(path) } catch { die("ProcFS.readAll: \(error)") }
            let tRead = now() - t
            t = now()
            let mappings: [Mapping]
            do { mappings = try bytes.withUnsafeBytes { b throws(VmIoError) in try MapsParser.parseMappings(b) } } catch
            {
                die("MapsParser: \(error)")
            }
            let tParse = now() - t
            t = now()
            do { _ = try MemView(mappings: mappings) } catch { die("MemView: \(error)") }
            let tView = now() - t
            if i > 0 { bare.append(tBare); readAll.append(tRead); parse.append(tParse); view.append(tView) }
        }
        return "read(2) loop \(seconds(median(bare))), ProcFS.readAll \(seconds(median(readAll))), "
            + "MapsParser.parseMappings \(seconds(median(parse))), MemView(mappings:) \(seconds(median(view)))"
    }

    mutating func scatter(pid: pid_t) {
        let cScatter = built("bench-c-scatter")
        let inner = 5  // samples a C process (after one it drops) / a round in-process
        let slots = UnsafeMutableRawBufferPointer.allocate(
            byteCount: ProcessVMBackend.maxIovecs * 4096, alignment: 4096)
        slots.initializeMemory(as: UInt8.self, repeating: 0)  // pre-faulted, like the C side's
        defer { slots.deallocate() }
        let backend = ProcessVMBackend()
        var cFull = Samples(), cParse = Samples(), oFull = Samples(), oParse = Samples(), oBefore = Samples()
        var cFacts = "", oFacts = "", oParseFacts = ""
        var cSplitRead: [Double] = [], cSplitParse: [Double] = []

        /// One measurement in this process: its wall-clock and CPU time.
        func ours(parseOnly: Bool) -> (wall: Double, cpu: Double) {
            let (t0, c0) = (now(), cpuNow())
            let view: MemView
            do { view = try ProcessMaps.read(pid: pid) } catch { die("ProcessMaps.read: \(error)") }
            if parseOnly {
                let t = (now() - t0, cpuNow() - c0)
                oParseFacts = "mappings \(view.mappings.count)"
                return t
            }
            var pieces: [ProcessVMBackend.Piece] = []
            pieces.reserveCapacity(view.mappings.count)
            for m in view.mappings where m.permissions.read {
                let len = Int(min(4096, m.range.count))
                let at = (pieces.count % ProcessVMBackend.maxIovecs) * 4096
                pieces.append(
                    ProcessVMBackend.Piece(
                        address: m.start, destination: UnsafeMutableRawBufferPointer(rebasing: slots[at..<(at + len)])))
            }
            let results = backend.readScattered(pid: pid, pieces)
            let t = (now() - t0, cpuNow() - c0)
            let bytes = results.reduce(0) { $0 + $1.moved }
            let faults = results.count { $0.stop != nil }
            oFacts = "mappings \(view.mappings.count) pieces \(results.count) bytes \(bytes) faults \(faults)"
            return t
        }

        /// The maps read and parsed on one thread, as before the parse overlapped the read
        /// (what `ProcessMaps.read` does under VMIO_ONE_THREAD=1).
        func oursOnOneThread() -> (wall: Double, cpu: Double) {
            let (t0, c0) = (now(), cpuNow())
            do {
                _ = try ProcFS.withContents(of: "/proc/\(pid)/maps") { raw in
                    Result { () throws(VmIoError) in try MapsParser.parse(bytes: raw) }
                }.get()
            } catch { die("maps on one thread: \(error)") }
            return (now() - t0, cpuNow() - c0)
        }

        interleaved(5) { k, counted in
            switch k {
            case 0, 1:
                var args = [cScatter, String(pid), "--reps", String(inner + 1)]
                if k == 1 { args.insert("--parse-only", at: 2) }
                let r = runChecked(args, what: "bench-c-scatter")
                var s = reported(r)
                (s.wall, s.cpu) = (Array(s.wall.dropFirst()), Array(s.cpu.dropFirst()))  // the first is a cold process
                if k == 1, counted {
                    for line in r.output.split(separator: "\n").dropFirst(3) where line.hasPrefix("split ") {
                        let f = line.split(separator: " ")
                        if f.count == 5, let rd = Double(f[2]), let ps = Double(f[4]) {
                            cSplitRead.append(rd); cSplitParse.append(ps)
                        }
                    }
                }
                if k == 0 {
                    let lines = r.output.split(separator: "\n")
                    cFacts = "\(lines.first ?? "") \(lines.dropFirst(2).first ?? "")"
                }
                if counted && k == 0 { (cFull.wall, cFull.cpu) = (cFull.wall + s.wall, cFull.cpu + s.cpu) }
                if counted && k == 1 { (cParse.wall, cParse.cpu) = (cParse.wall + s.wall, cParse.cpu + s.cpu) }
            case 4:
                _ = oursOnOneThread()  // warm
                for _ in 0..<inner {
                    let (wall, cpu) = oursOnOneThread()
                    if counted { oBefore.append(wall: wall, cpu: cpu) }
                }
            default:
                _ = ours(parseOnly: k == 3)  // warm
                for _ in 0..<inner {
                    let (wall, cpu) = ours(parseOnly: k == 3)
                    if counted && k == 2 { oFull.append(wall: wall, cpu: cpu) }
                    if counted && k == 3 { oParse.append(wall: wall, cpu: cpu) }
                }
            }
        }
        let (cf, of, cp, op) = (cFull.wallMedian, oFull.wallMedian, cParse.wallMedian, oParse.wallMedian)
        ratioRow(
            "3 maps parse + 4 KiB from each of \(opts.maps)+ mappings", ours: oFull, baseline: cFull, label: "C",
            target: ">= 0.80x (time <= 1.25x)", atLeast: 0.8)
        ratioRow(
            "3 maps parse alone", ours: oParse, baseline: cParse, label: "C hand parser",
            target: ">= 1.0x", atLeast: 1.0)
        ratioRow(
            "3 maps parse alone, one thread (before)", ours: oBefore, baseline: cParse, label: "C hand parser",
            target: "-", atLeast: 0)
        rows[rows.count - 1].pass = nil  // the figure before the change, no target
        details.append("3: C:    \(cFacts)")
        details.append("3: ours: \(oFacts)")
        details.append(
            "3: C, maps parse alone: reading the file \(seconds(median(cSplitRead))), "
                + "parsing \(seconds(median(cSplitParse)))")
        details.append("3: ours, maps parse alone: \(oParseFacts); \(parseBreakdown(pid: pid))")
        details.append(
            String(
                format: "3: maps parse share: C %.0f %%, ours %.0f %% of the full measurement", cp / cf * 100,
                op / of * 100))
    }
}
