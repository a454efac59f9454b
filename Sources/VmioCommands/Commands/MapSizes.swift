import VmIO
import VmioPtrace

extension MapsCommand {
    /// `maps --sizes`: each mapping with what it costs, from `/proc/PID/smaps` (in KiB, as
    /// `pmap -X` prints them), and the totals.
    func mapSizes(_ target: Target) throws -> Outcome {
        let usages = try ProcessSmaps.read(pid: target.pid)
        let total = MappingUsage.total(usages)
        var o = Outcome()
        let columns = ["Size", "Rss", "Pss", "Private_Dirty", "Swap"]
        let widths = columns.map { max($0.count, 9) }
        func row(_ first: String, _ second: String, _ values: [UInt64], _ last: String) -> String {
            let numbers = zip(values, widths).map { value, width in pad(String(value >> 10), width) }
            return
                ([pad(first, 16), second + String(repeating: " ", count: max(0, 4 - second.count))] + numbers + [last])
                .joined(separator: " ")
        }
        o.text.append(
            ([pad("Address", 16), "Perm"] + zip(columns, widths).map { pad($0, $1) } + ["Mapping"]).joined(
                separator: " "))
        for u in usages {
            o.text.append(
                row(
                    String(u.mapping.start, radix: 16), u.mapping.permissions.description,
                    [u.size, u.rss, u.pss, u.privateDirty, u.swap],
                    u.mapping.path + (u.mapping.isDeleted ? " (deleted)" : "")))
        }
        o.text.append(row("total", "", [total.size, total.rss, total.pss, total.privateDirty, total.swap], "KiB"))
        func sizes(_ size: UInt64, _ rss: UInt64, _ pss: UInt64, _ dirty: UInt64, _ swap: UInt64) -> [(
            String, JSONValue
        )] {
            [("rss", .uint(rss)), ("pss", .uint(pss)), ("private_dirty", .uint(dirty)), ("swap", .uint(swap))]
        }
        o.json = [
            ("pid", .int(Int64(target.pid))),
            (
                "mappings",
                .array(
                    usages.map { u in
                        guard case .object(let fields) = u.mapping.json else { return u.mapping.json }
                        return .object(fields + sizes(u.size, u.rss, u.pss, u.privateDirty, u.swap))
                    })
            ),
            (
                "totals",
                .object(
                    [("size", .uint(total.size))]
                        + sizes(total.size, total.rss, total.pss, total.privateDirty, total.swap))
            ),
        ]
        o.value = .int(Int128(total.rss))
        return o
    }

    private func pad(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }
}
