/// `100ms`, `2s`, `1.5s`, `0.5` (seconds), `250us`.
public func parseDuration(_ text: String) -> Duration? {
    let units: [(String, Double)] = [("ms", 1e-3), ("us", 1e-6), ("s", 1), ("", 1)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        guard let v = Double(text.dropLast(suffix.count)), v >= 0, v <= 86_400 else { continue }
        return .nanoseconds(Int64(v * scale * 1e9))
    }
    return nil
}
