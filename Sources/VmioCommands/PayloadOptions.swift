import ArgumentParser
import VmIO
import VmioPtrace

/// The bytes `write` writes and `search` looks for: hex, a string, or one typed value.
public struct PayloadOptions: ParsableArguments {
    @Option(help: "Bytes as hex: 'de ad be ef' or 'deadbeef' (search also takes ?? wildcards: 'de ad ?? ef').")
    public var hex: String?

    @Option(help: "A UTF-8 string.")
    public var string: String?

    @Option(help: "A string encoded as UTF-16LE.")
    public var utf16: String?

    // The typed values (`--u8` … `--f64`). Each takes the next word whatever it looks like, so
    // `--i32 -5` is the value -5, not an option.
    @Option(parsing: .unconditional, help: "An unsigned 8-bit value (decimal or 0x hex).") var u8: String?
    @Option(parsing: .unconditional, help: "An unsigned 16-bit value.") var u16: String?
    @Option(parsing: .unconditional, help: "An unsigned 32-bit value.") var u32: String?
    @Option(parsing: .unconditional, help: "An unsigned 64-bit value.") var u64: String?
    @Option(parsing: .unconditional, help: "A signed 8-bit value.") var i8: String?
    @Option(parsing: .unconditional, help: "A signed 16-bit value.") var i16: String?
    @Option(parsing: .unconditional, help: "A signed 32-bit value.") var i32: String?
    @Option(parsing: .unconditional, help: "A signed 64-bit value.") var i64: String?
    @Option(parsing: .unconditional, help: "A 32-bit float.") var f32: String?
    @Option(parsing: .unconditional, help: "A 64-bit float.") var f64: String?

    public init() {}

    /// A value that does not fit its type is a malformed command line.
    public func validate() throws {
        for (format, text) in typedValues where format.encode(text) == nil {
            throw ValidationError("'\(text)' is not a valid \(format.rawValue) value")
        }
    }

    /// The typed values given (validation counts them: one at most).
    public var typedValues: [(ValueFormat, String)] {
        let given: [(ValueFormat, String?)] = [
            (.u8, u8), (.u16, u16), (.u32, u32), (.u64, u64), (.i8, i8),
            (.i16, i16), (.i32, i32), (.i64, i64), (.f32, f32), (.f64, f64),
        ]
        return given.compactMap { format, text in text.map { (format, $0) } }
    }

    /// The spec, with `write`'s extra sources.
    public func spec(file: String? = nil, nul: Bool = false) -> PayloadSpec {
        var spec = PayloadSpec()
        spec.hex = hex
        spec.string = string
        spec.utf16 = utf16
        spec.file = file
        spec.nul = nul
        spec.typed = typedValues.first
        return spec
    }

    /// Malformed hex is a malformed command line: plain bytes for `write`, a pattern (with
    /// `??` wildcards) for `search`.
    func validateHex(pattern: Bool, alignment: UInt64? = nil) throws {
        do {
            if pattern {
                _ = try spec().pattern(alignment: alignment)
            } else if let hex, case .failure(let error) = parseHexBytes(hex) {
                throw error
            }
        } catch VmIoError.badPattern(_, let reason) {
            throw ValidationError(
                pattern ? "bad search pattern '\(hex ?? spec().label)': \(reason)" : "malformed hex: \(reason)")
        }
    }

    /// Exactly one source of bytes; `sources` names them for the message.
    public func validateOne(file: String? = nil, sources: String) throws {
        guard spec(file: file).sourceCount == 1, typedValues.count <= 1 else {
            throw ValidationError("give exactly one of \(sources)")
        }
    }
}
