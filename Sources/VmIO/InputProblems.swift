/// Why an address expression (``AddressExpression``) does not parse or resolve.
public enum AddressProblem: Hashable, Sendable, CustomStringConvertible {
    /// Nothing but spaces.
    case empty
    /// `sym:` with no name after it.
    case symbolNameMissing
    /// `sym:FILE:NAME` with an empty file or name.
    case symbolFileOrNameMissing
    /// Starts with a digit but is no number (`12ab`).
    case notANumber(String)
    /// An offset takes the address below zero.
    case belowZero(value: Address, offset: UInt64)

    public var description: String {
        switch self {
        case .empty: "empty address"
        case .symbolNameMissing: "sym: needs a symbol name"
        case .symbolFileOrNameMissing: "write sym:FILE:NAME"
        case .notANumber(let text): "'\(text)' is not a number (use 0x for hex)"
        case .belowZero(let value, let offset): "\(value.hex) - \(offset.hex) is below zero"
        }
    }
}

/// Why a region selector (``RegionSelector``) does not parse.
public enum SelectorProblem: Hashable, Sendable, CustomStringConvertible {
    /// Nothing but spaces.
    case empty
    /// `perm:` with no letters, or letters outside `rwxsp`.
    case permissionLetters
    /// Starts like an address range but is not `0xSTART-0xEND`.
    case rangeForm

    public var description: String {
        switch self {
        case .empty: "empty region selector"
        case .permissionLetters: "perm: takes letters from rwxsp, like perm:rw"
        case .rangeForm: "an address range is 0xSTART-0xEND"
        }
    }
}

/// Why a byte pattern (hex bytes, `??` wildcards) does not parse or cannot be searched for.
public enum PatternProblem: Hashable, Sendable, CustomStringConvertible {
    /// No byte at all.
    case empty
    /// An alignment of zero.
    case zeroAlignment
    /// Only wildcards.
    case noKnownByte
    /// An odd number of hex digits in a search pattern.
    case oddDigitCount
    /// An odd number of hex digits in hex bytes, with the count.
    case oddDigits(Int)
    /// Hex bytes with no digit.
    case noHexDigits
    /// A pair that is neither a hex byte nor `??`.
    case notAByteOrWildcard(String)
    /// A pair that is not a hex byte.
    case notAByte(String)

    public var description: String {
        switch self {
        case .empty: "the pattern is empty"
        case .zeroAlignment: "alignment must be at least 1"
        case .noKnownByte: "the pattern needs at least one known byte"
        case .oddDigitCount: "odd number of hex digits in the pattern"
        case .oddDigits(let count): "odd number of hex digits (\(count))"
        case .noHexDigits: "no hex digits"
        case .notAByteOrWildcard(let pair): "'\(pair)' is neither a hex byte nor ??"
        case .notAByte(let pair): "'\(pair)' is not a hex byte"
        }
    }
}

/// A numeric field of a `/proc/PID/maps` line.
public enum MapsField: String, Hashable, Sendable, CustomStringConvertible {
    /// The start address.
    case startAddress = "start address"
    /// The end address.
    case endAddress = "end address"
    /// The offset into the mapped file.
    case offset
    /// The device's major number.
    case deviceMajor = "device major"
    /// The device's minor number.
    case deviceMinor = "device minor"
    /// The inode of the mapped file.
    case inode
    public var description: String { rawValue }
}

/// A separator of a `/proc/PID/maps` line.
public enum MapsSeparator: String, Hashable, Sendable, CustomStringConvertible {
    /// The `-` between the two addresses.
    case dash = "'-' between the addresses"
    /// The space after the addresses.
    case afterAddresses = "a space after the addresses"
    /// The space after the permissions.
    case afterPermissions = "a space after the permissions"
    /// The space after the offset.
    case afterOffset = "a space after the offset"
    /// The `:` between the device's major and minor numbers.
    case deviceColon = "':' in the device number"
    /// The space after the device.
    case afterDevice = "a space after the device"
    /// The spaces before the path.
    case beforePath = "a space before the path"
    public var description: String { rawValue }
}

/// Why a line of `/proc/PID/maps` (or `/proc/PID/smaps`) does not parse.
public enum MapsProblem: Hashable, Sendable, CustomStringConvertible {
    /// A newline inside what was given as one line.
    case newlineInsideLine
    /// A start address above the end address.
    case startAboveEnd
    /// The line ends where a separator was expected.
    case endsBefore(MapsSeparator)
    /// Another character where a separator was expected.
    case expected(MapsSeparator)
    /// The line ends where a field was expected.
    case endsBeforeField(MapsField)
    /// Another character where a hexadecimal field was expected.
    case expectedHex(MapsField)
    /// Another character where a decimal field was expected.
    case expectedDecimal(MapsField)
    /// A field with more than `max` hex digits.
    case tooManyDigits(MapsField, max: Int)
    /// A field that does not fit in 64 bits.
    case tooLarge(MapsField)
    /// Not four characters like `r-xp`.
    case permissions
    /// The fourth permission character is neither `p` nor `s`.
    case sharing
    /// smaps: a `Name: value` line before the first mapping line.
    case fieldBeforeFirstMapping
    /// smaps: a value that is not a number of kB.
    case notKilobytes(String)

    public var description: String {
        switch self {
        case .newlineInsideLine: "newline inside a line"
        case .startAboveEnd: "start address above end address"
        case .endsBefore(let s): "line ends where \(s) was expected"
        case .expected(let s): "expected \(s)"
        case .endsBeforeField(let f): "line ends where the \(f) was expected"
        case .expectedHex(let f): "expected a hexadecimal \(f)"
        case .expectedDecimal(let f): "expected a decimal \(f)"
        case .tooManyDigits(let f, let max): "\(f) has more than \(max) hex digits"
        case .tooLarge(let f): "\(f) does not fit in 64 bits"
        case .permissions: "permissions must be four characters like r-xp"
        case .sharing: "the fourth permission character must be p or s"
        case .fieldBeforeFirstMapping: "a field before the first mapping"
        case .notKilobytes(let word): "'\(word)' is not a number of kB"
        }
    }
}
