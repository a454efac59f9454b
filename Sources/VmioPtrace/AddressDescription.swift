import VmIO

/// An address of a process told back as a user would write it (gdb's `info symbol`): the
/// symbol it is in, `FUNCTION+0xOFF`, and where it lies, `MODULE+0xOFF`, which is itself an
/// address expression that resolves to the same address.
public struct AddressDescription: Hashable, Sendable {
    /// The address described.
    public let address: Address
    /// The mapping that holds the address; nil when none does.
    public let mapping: Mapping?
    /// The sized function or object of the ELF tables that holds it (``SymbolTable/symbolize(_:)``).
    public let symbol: SymbolMatch?
    /// How the location is named: a file's basename (its full path when the basename names
    /// several regions), a special name (`[heap]`, `[stack]`, `[anon:NAME]`), or, for an
    /// anonymous mapping or a name that denotes several regions, the mapping's start in hex.
    public let locationBase: String?
    /// How far the address is past ``locationBase``: from the first mapping of the region the
    /// name denotes (as in backtraces), else from the start of its own mapping.
    public let locationOffset: UInt64?

    /// `FUNCTION+0xOFF`, `FUNCTION` at offset 0, `??` without a symbol.
    public var functionText: String { symbol?.description ?? "??" }

    /// `MODULE+0xOFF`, `MODULE` at offset 0, or `?` when no mapping holds the address.
    public var locationText: String {
        guard let locationBase, let locationOffset else { return "?" }
        return locationOffset == 0 ? locationBase : "\(locationBase)+\(locationOffset.hex)"
    }
}

extension SymbolTable {
    /// Describes `address` from this table's view and the ELF tables of the mapped files.
    public func describe(_ address: Address) -> AddressDescription {
        guard let mapping = view.translate(address)?.mapping else {
            return AddressDescription(
                address: address, mapping: nil, symbol: nil, locationBase: nil, locationOffset: nil)
        }
        // Named as an address expression resolves the name (MemView.label(of:)): never a name
        // that denotes several regions.
        let (base, start) = view.labelBase(of: address) ?? (mapping.start.hex, mapping.start)
        return AddressDescription(
            address: address, mapping: mapping, symbol: symbolize(address), locationBase: base,
            locationOffset: address - start)
    }
}
