import ArgumentParser
import VmIO
import VmioPtrace

/// `symbol ADDR…`: each address told back as `FUNCTION+0xOFF (MODULE+0xOFF)`, like gdb's
/// `info symbol`; the location is itself an address expression for the same address.
public struct SymbolCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "symbol",
        abstract: "Tell addresses back as FUNCTION+0xOFF (MODULE+0xOFF).",
        discussion: """
            One line an address: the address, the function or object of the ELF symbol tables \
            (.symtab, .dynsym, separate debug files) that holds it, or ??, and where it lies: a \
            file's basename, [heap], [stack] or [anon:NAME] (from its first mapping), or an \
            anonymous mapping's start, plus the offset (itself an ADDR for the same address). \
            An address in no mapping is bad input (exit 1, after the others are printed). \
            --json prints {pid, addresses: [{address, function, function_offset, location, \
            module, module_offset, perms}]} (null where unknown).
            """
    )

    @Argument(help: "Addresses (at least one): 0x…, decimal, [heap]+OFF, [stack], FILE+OFF, sym:NAME.")
    public var addresses: [AddressExpression]

    public init() {}

    public func run(in context: CommandContext) throws -> Outcome {
        // Nothing attaches: the maps and the ELF files say it all.
        try context.withTarget { target in try describe(target) }
    }

    private func describe(_ target: Target) throws -> Outcome {
        let descriptions = try addresses.map { target.symbols.describe(try target.resolve($0)) }
        var o = Outcome()
        o.text = descriptions.map(\.line)
        o.json = [("pid", .int(Int64(target.pid))), ("addresses", .array(descriptions.map(\.json)))]
        o.value = descriptions.first.map { .string($0.functionText) }
        let unmapped = descriptions.filter { $0.mapping == nil }
        if let first = unmapped.first {
            o.status = .badInput
            o.message =
                "address \(first.address.hex) is in no mapping of pid \(target.pid)"
                + (unmapped.count > 1 ? " (and \(unmapped.count - 1) more)" : "")
        }
        return o
    }
}

extension AddressDescription {
    /// `0xADDR  FUNCTION+0xOFF (MODULE+0xOFF)`.
    var line: String {
        "\(address.hex)  \(functionText) (\(mapping == nil ? "in no mapping" : locationText))"
    }

    var json: JSONValue {
        .object([
            ("address", .string(address.hex)),
            ("function", symbol.map { .string($0.name) } ?? .null),
            ("function_offset", symbol.map { .string($0.offset.hex) } ?? .null),
            ("location", mapping == nil ? .null : .string(locationText)),
            ("module", mapping.flatMap { $0.path.isEmpty ? nil : JSONValue.string($0.path) } ?? .null),
            ("module_offset", locationOffset.map { .string($0.hex) } ?? .null),
            ("perms", mapping.map { .string($0.permissions.description) } ?? .null),
        ])
    }
}
