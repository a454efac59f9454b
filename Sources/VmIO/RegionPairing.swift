/// How the regions of two sides of a diff match up, by address and path: regions of one
/// path that overlap are compared over their common part (and reported as resized when
/// their bounds differ); a named region whose only counterpart is one of the same path and
/// size elsewhere has moved, and is reported, not compared; the rest are in one side only.
public enum RegionPairing: Hashable, Sendable {
    /// Compared over `compared`; `a` and `b` are the regions as each side has them.
    case compared(a: AddressRange, b: AddressRange, path: String, compared: AddressRange)
    /// A named region at `a` in one side and at `b` (same path and size) in the other: reported, not compared.
    case moved(a: AddressRange, b: AddressRange, path: String)
    /// A region only the first side has.
    case onlyInA(AddressRange, path: String)
    /// A region only the second side has.
    case onlyInB(AddressRange, path: String)

    /// Whether the region changed its bounds (compared over the common part only).
    public var isResized: Bool {
        if case .compared(let a, let b, _, _) = self { return a != b }
        return false
    }

    /// Pairs the regions of two sides, each sorted by address and disjoint; the result is
    /// in address order of A's regions, then B's that have no counterpart.
    public static func pair(_ a: [(range: AddressRange, path: String)], _ b: [(range: AddressRange, path: String)])
        -> [RegionPairing]
    {
        var out: [RegionPairing] = []
        var matchedB = Set<Int>()
        var unmatchedA: [Int] = []
        var j = 0
        for (i, region) in a.enumerated() {
            // B's regions before this one can overlap no later A region either.
            while j < b.count && b[j].range.end <= region.range.start { j += 1 }
            var found = false
            var k = j
            while k < b.count && b[k].range.start < region.range.end {
                if b[k].path == region.path, b[k].range.intersects(region.range) {
                    let common = region.range.clamped(to: b[k].range)
                    out.append(.compared(a: region.range, b: b[k].range, path: region.path, compared: common))
                    matchedB.insert(k)
                    found = true
                }
                k += 1
            }
            if !found { unmatchedA.append(i) }
        }
        var onlyB = Set((0..<b.count).filter { !matchedB.contains($0) })
        for i in unmatchedA {
            let region = a[i]
            let candidates = onlyB.filter { b[$0].path == region.path && b[$0].range.count == region.range.count }
            // Anonymous regions of one size are not told apart: only a named one has moved.
            if !region.path.isEmpty, candidates.count == 1, let k = candidates.first {
                out.append(.moved(a: region.range, b: b[k].range, path: region.path))
                onlyB.remove(k)
            } else {
                out.append(.onlyInA(region.range, path: region.path))
            }
        }
        for k in onlyB.sorted() { out.append(.onlyInB(b[k].range, path: b[k].path)) }
        return out
    }
}
