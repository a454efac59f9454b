/// A count and its noun, the noun plural unless the count is 1: `1 thread`, `2 threads`,
/// `1 byte`, `0 regions`; `plural` for a noun that does not just take an `s`.
public func counted(_ count: some BinaryInteger, _ noun: String, plural: String? = nil) -> String {
    "\(count) \(count == 1 ? noun : plural ?? noun + "s")"
}
