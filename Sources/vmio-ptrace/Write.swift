import ArgumentParser
import Foundation
import VmIO
import VmioPtrace
import VmioScript

struct Write: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write memory of a process.",
        discussion: """
            Give exactly one source of bytes. The whole range must lie in mappings of the \
            target (nothing is written otherwise). A mapping the target cannot write (r-xp code, \
            r--p data) is refused unless --force, which writes through /proc/PID/mem. \
            --verify reads the range back through the write-to-read handover and compares; a \
            mismatch exits 2. --json prints {pid, address, requested, written, verified, mismatch}.
            """
    )

    @Argument(help: "The target's pid, or `self`.")
    var pid: PID

    @Argument(help: "Where to write: 0x…, decimal, [heap]+OFF, [stack], FILE+OFF, sym:NAME.")
    var address: AddressExpression

    @Option(help: "Bytes as hex: 'deadbeef' or 'de ad be ef'.")
    var hex: String?

    @Option(help: "A UTF-8 string (add --nul for a terminating NUL).")
    var string: String?

    @Flag(help: "Append a NUL byte to --string.")
    var nul = false

    @Option(help: "The contents of this file.")
    var file: String?

    @Option(help: "An unsigned 8-bit value (decimal or 0x hex).") var u8: String?
    @Option(help: "An unsigned 16-bit value.") var u16: String?
    @Option(help: "An unsigned 32-bit value.") var u32: String?
    @Option(help: "An unsigned 64-bit value.") var u64: String?
    @Option(help: "A signed 8-bit value.") var i8: String?
    @Option(help: "A signed 16-bit value.") var i16: String?
    @Option(help: "A signed 32-bit value.") var i32: String?
    @Option(help: "A signed 64-bit value.") var i64: String?
    @Option(help: "A 32-bit float.") var f32: String?
    @Option(help: "A 64-bit float.") var f64: String?

    @Flag(help: "Write through /proc/PID/mem, which can patch mappings the target cannot write (code).")
    var force = false

    @Flag(help: "Read the range back after writing and compare.")
    var verify = false

    @OptionGroup var options: TargetOptions

    private var typed: [(ValueFormat, String?)] {
        [(.u8, u8), (.u16, u16), (.u32, u32), (.u64, u64), (.i8, i8), (.i16, i16), (.i32, i32),
         (.i64, i64), (.f32, f32), (.f64, f64)]
    }

    func validate() throws {
        let given = [hex, string, file].compactMap { $0 }.count + typed.compactMap(\.1).count
        guard given == 1 else {
            throw ValidationError("give exactly one of --hex, --string, --file, --u8…--u64, --i8…--i64, --f32, --f64")
        }
        if nul && string == nil { throw ValidationError("--nul goes with --string") }
    }

    func run() throws {
        try runReporting(json: options.json) {
            let bytes = try payload()
            let target = try Target(pid: pid.value)
            let start = try target.resolve(address)
            let report = try target.write(bytes, at: start, force: force, verify: verify)
            if options.json {
                print(JSONValue.object([
                    ("pid", .int(Int64(pid.value))), ("address", .string(start.hex)),
                    ("requested", .uint(report.requested)), ("written", .uint(report.written)),
                    ("verified", .bool(report.verified && report.mismatch == nil)),
                    ("mismatch", report.mismatch.map { .string($0.hex) } ?? .null),
                ]).rendered)
            } else {
                print("wrote \(report.written) bytes at \(start.hex)\(report.verified && report.mismatch == nil ? " (verified)" : "")")
            }
            if let mismatch = report.mismatch {
                printError("vmio-ptrace: verify failed: the byte at \(mismatch.hex) reads back differently")
                return .partialCopy
            }
            return .ok
        }
    }

    /// The bytes to write, from whichever source was given.
    private func payload() throws -> [UInt8] {
        if let hex {
            switch parseHexBytes(hex) {
            case .success(let bytes): return bytes
            case .failure(let e):
                if case .badAddress(_, let reason) = e { throw BadInput("malformed --hex: \(reason)") }
                throw e
            }
        }
        if let string { return Array(string.utf8) + (nul ? [0] : []) }
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw BadInput("cannot read \(file)")
            }
            return Array(data)
        }
        for case let (format, text?) in typed {
            guard let bytes = encode(text, as: format) else {
                throw BadInput("'\(text)' is not a valid \(format.rawValue) value")
            }
            return bytes
        }
        throw BadInput("nothing to write")
    }
}

/// Little-endian bytes of `text` as a value of `format`; nil when it does not parse or fit.
func encode(_ text: String, as format: ValueFormat) -> [UInt8]? {
    func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    func signed(_ text: String) -> Int64? {
        text.hasPrefix("-") ? parseNumber(text.dropFirst()[...]).flatMap { $0 <= UInt64(Int64.max) + 1 ? Int64(truncatingIfNeeded: 0 &- $0) : nil }
            : parseNumber(text[...]).flatMap { $0 <= UInt64(Int64.max) ? Int64($0) : nil }
    }
    switch format {
    case .u8: return parseNumber(text[...]).flatMap(UInt8.init(exactly:)).map(le)
    case .u16: return parseNumber(text[...]).flatMap(UInt16.init(exactly:)).map(le)
    case .u32: return parseNumber(text[...]).flatMap(UInt32.init(exactly:)).map(le)
    case .u64, .ptr: return parseNumber(text[...]).map(le)
    case .i8: return signed(text).flatMap(Int8.init(exactly:)).map(le)
    case .i16: return signed(text).flatMap(Int16.init(exactly:)).map(le)
    case .i32: return signed(text).flatMap(Int32.init(exactly:)).map(le)
    case .i64: return signed(text).map(le)
    case .f32: return Float(text).map { le($0.bitPattern) }
    case .f64: return Double(text).map { le($0.bitPattern) }
    default: return nil
    }
}
