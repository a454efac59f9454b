import VmIO
import VmioCommands
import VmioPtrace

/// The commands' work over a ``Target``, shared by the CLI and sessions: each returns
/// an ``Outcome`` and leaves presentation choices (text or JSON) to the caller.
public enum Operations {
    /// `maps`
    public static func maps(_ target: Target) -> Outcome {
        var o = Outcome()
        o.text = target.view.mappings.map(\.description)
        o.json = [
            ("pid", .int(Int64(target.pid))), ("generation", .uint(target.view.generation)),
            ("mappings", .array(target.view.mappings.map(\.json))),
            ("nspid", .array(ProcFS.nspid(target.pid).map { .int(Int64($0)) })),
            ("abi", target.abi.json),
        ]
        o.value = .int(Int128(target.view.mappings.count))
        return o
    }

    /// `write`
    public static func write(_ target: Target, _ bytes: [UInt8], at start: Address, force: Bool, verify: Bool) throws
        -> Outcome
    {
        let report = try target.write(bytes, at: start, force: force, verify: verify)
        var o = Outcome()
        o.json = [
            ("pid", .int(Int64(target.pid))), ("address", .string(start.hex)),
            ("requested", .uint(report.requested)), ("written", .uint(report.written)),
            ("verified", .bool(report.verified && report.mismatch == nil)),
            ("mismatch", report.mismatch.map { .string($0.hex) } ?? .null),
        ]
        o.text = [
            "wrote \(counted(report.written, "byte")) at \(start.hex)\(report.verified && report.mismatch == nil ? " (verified)" : "")"
        ]
        o.value = .int(Int128(report.written))
        if let mismatch = report.mismatch {
            o.status = .partialCopy
            o.message = "verify failed: the byte at \(mismatch.hex) reads back differently"
        }
        return o
    }

    /// `copy` from `source` to `destination`.
    public static func copy(
        from source: Target, at from: Address, to destination: Target, at to: Address, count: UInt64, skipFaults: Bool,
        bestEffort: Bool = false
    ) throws -> Outcome {
        guard source.view.translate(from) != nil else {
            throw CommandError.badInput("source address \(from.hex) is in no mapping of pid \(source.pid)")
        }
        _ = try AddressRange(start: to, count: count)  // an overflowing range is named as such first
        guard destination.view.translate(to) != nil else {
            throw CommandError.badInput("destination address \(to.hex) is in no mapping of pid \(destination.pid)")
        }
        let report: TransferReport
        do {
            report = try destination.copy(
                from: source, at: from, to: to, count: count, skipFaults: skipFaults, fillHoles: bestEffort)
        } catch {
            // A guard, not `catch TargetError.model(…)`: that pattern over a typed throw
            // crashes Swift 6.3's SILGen ("Found ownership error").
            guard case .model(.rangeNotCovered(let gap)) = error else { throw error }
            let range = "destination range \(to.hex)+\(count)"
            throw CommandError.badInput(
                "\(range) leaves the mappings of pid \(destination.pid): \(gap.hex) is in no mapping")
        }
        var o = Outcome()
        o.json =
            [
                ("source", .string("\(source.pid):\(from.hex)")),
                ("destination", .string("\(destination.pid):\(to.hex)")),
            ] + report.jsonFields
        if report.isComplete {
            o.text = [
                "copied \(counted(report.moved, "byte")) from \(source.pid):\(from.hex) to \(destination.pid):\(to.hex)"
            ]
        } else {
            o.text =
                report.holes.map { "hole: \($0.length) bytes at \($0.address.hex) (\($0.kind))" }
                + [report.summary("copied")]
        }
        o.value = .int(Int128(report.moved))
        o.status = report.exitStatus(bestEffort: bestEffort)
        if o.status != .ok { o.message = report.summary("partial copy", pids: (source.pid, destination.pid)) }
        return o
    }

    /// `search`
    public static func search(
        _ target: Target, pattern: BytePattern, label: String, regions: [RegionSelector], max: Int,
        progress: ((UInt64) -> Void)? = nil
    ) throws -> (Outcome, SearchReport) {
        let selected = RegionSelector.select(regions, in: target.view)
        guard !selected.isEmpty else {
            throw CommandError.badInput("no readable mapping of pid \(target.pid) matches the selection")
        }
        let report = try target.search(pattern, in: selected, max: max, progress: progress)
        let unreadable = report.holes.reduce(0) { $0 + $1.length }
        var o = Outcome()
        o.json = [
            ("pid", .int(Int64(target.pid))), ("pattern", .string(label)),
            (
                "hits",
                .array(
                    report.hits.map { hit in
                        .object([
                            ("address", .string(hit.address.hex)),
                            (
                                "region",
                                .object([
                                    ("start", .string(hit.mapping.start.hex)), ("end", .string(hit.mapping.end.hex)),
                                    ("perms", .string(hit.mapping.permissions.description)),
                                    ("path", .string(hit.mapping.path)),
                                ])
                            ),
                            ("offset", .string(hit.offsetInMapping.hex)),
                            ("label", target.view.label(of: hit.address).map { .string($0) } ?? .null),
                        ])
                    })
            ),
            ("truncated", .bool(report.truncated)), ("scanned", .uint(report.scanned)),
            ("unreadable", .uint(unreadable)),
        ]
        o.text = report.hits.map { hit in
            // A label the other commands take back as an ADDR (README.md, "Labels").
            let label = target.view.label(of: hit.address) ?? hit.address.hex
            let region = "\(hit.mapping.permissions) \(hit.mapping.start.hex)-\(hit.mapping.end.hex)"
            return "\(hit.address.hex)  \(label)  (\(region))"
        }
        var summary = "\(report.hits.count) hit\(report.hits.count == 1 ? "" : "s") in \(report.scanned) bytes"
        if report.truncated { summary += " (stopped at --max \(max))" }
        if unreadable > 0 { summary += "; \(unreadable) unreadable bytes skipped" }
        o.message = summary
        o.value = report.hits.first.map { .int(Int128($0.address)) }
        return (o, report)
    }

    /// `dump`
    /// With `bestEffort`, holes (zeros in the data files, listed in the manifest) still
    /// give status 0.
    public static func dump(
        _ target: Target, regions: [RegionSelector], to directory: String, replace: Bool,
        bestEffort: Bool = false, progress: ((UInt64) -> Void)? = nil
    ) throws -> Outcome {
        let selected = RegionSelector.select(regions, in: target.view)
        guard !selected.isEmpty else {
            throw CommandError.badInput("no readable mapping of pid \(target.pid) matches the selection")
        }
        let manifest = try target.dump(selected, to: directory, replace: replace, progress: progress)
        let saved = manifest.regions.reduce(0) { $0 + $1.bytesSaved }
        let holes = manifest.regions.flatMap(\.holes)
        var o = Outcome()
        o.json = [
            ("pid", .int(Int64(target.pid))), ("directory", .string(directory)),
            ("regions", .uint(UInt64(manifest.regions.count))), ("bytes_saved", .uint(saved)),
            (
                "holes",
                .array(
                    holes.map {
                        .object([
                            ("address", .string($0.address)), ("length", .uint($0.length)),
                            ("reason", .string($0.reason)),
                            ("errno", $0.errno.map { .int(Int64($0)) } ?? .null),
                            ("mechanism", $0.mechanism.map { .string($0) } ?? .null),
                        ])
                    })
            ),
            ("complete", .bool(manifest.complete)), ("stopped", .bool(manifest.stopped)),
        ]
        o.text =
            ["dumped \(counted(manifest.regions.count, "region")), \(counted(saved, "byte")), into \(directory)"]
            + holes.map { "hole: \($0.length) bytes at \($0.address) (\($0.reason))" }
        o.value = .int(Int128(saved))
        if !manifest.complete {
            o.status = bestEffort ? .ok : .partialCopy
            o.message =
                (bestEffort ? "best effort: " : "dump incomplete: ")
                + "\(counted(holes.count, "hole")), \(holes.reduce(0) { $0 + $1.length }) bytes could not be read"
                + (bestEffort ? " (zeros in the data files)" : "")
        }
        return o
    }

    /// `restore`
    public static func restore(
        _ target: Target, from directory: String, skip: [RegionSelector], skipMismatched: Bool, force: Bool,
        verify: Bool, progress: ((UInt64) -> Void)? = nil
    ) throws -> Outcome {
        let manifest = try DumpManifest.load(from: directory)
        let report = try target.restore(
            manifest, from: directory, skip: skip, skipMismatched: skipMismatched,
            force: force, verify: verify, progress: progress)
        var o = Outcome()
        o.json = [
            ("pid", .int(Int64(target.pid))), ("directory", .string(directory)),
            ("written", .uint(report.written)),
            (
                "regions",
                .array(
                    report.regions.map { r in
                        .object([
                            ("start", .string(r.region.start)), ("end", .string(r.region.end)),
                            ("path", .string(r.region.path)), ("action", .string(r.action.name)),
                            ("written", .uint(r.written)),
                        ])
                    })
            ),
            ("mismatch", report.mismatch.map { .string($0.hex) } ?? .null),
        ]
        o.text = ["restored \(counted(report.written, "byte")) into pid \(target.pid)"]
        let readOnly = report.regions.filter { $0.action == .readOnly }
        if !readOnly.isEmpty {
            o.text.append(
                "left out \(counted(readOnly.count, "region")) the target maps read-only (--force restores them)")
        }
        for r in report.regions where r.action != .write && r.action != .readOnly {
            o.text.append("left out \(r.region.start)-\(r.region.end) \(r.region.path): \(r.action.name)")
        }
        o.value = .int(Int128(report.written))
        if let bad = report.mismatch {
            o.status = .partialCopy
            o.message = "verify failed: the byte at \(bad.hex) reads back differently"
        }
        return o
    }
}

extension RestoreAction {
    public var name: String {
        switch self {
        case .write: "written"
        case .skipped: "skipped"
        case .readOnly: "read-only (use --force)"
        case .mismatch(let why): "mismatch: \(why)"
        }
    }
}

extension Mapping {
    /// The mapping as `maps --json` prints it.
    public var json: JSONValue {
        .object([
            ("start", .string(start.hex)), ("end", .string(end.hex)), ("size", .uint(range.count)),
            ("perms", .string(permissions.description)), ("offset", .string(offset.hex)),
            ("device", .string(device.description)), ("inode", .uint(inode)),
            ("path", .string(path)), ("deleted", .bool(isDeleted)),
        ])
    }
}
