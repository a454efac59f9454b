/// Access permissions of one mapping, the `rwxp`/`rwxs` column of `/proc/PID/maps`.
public struct Permissions: Hashable, Sendable, CustomStringConvertible {
    /// The mapping can be read (`r`).
    public var read: Bool
    /// The mapping can be written (`w`).
    public var write: Bool
    /// The mapping can be executed (`x`).
    public var execute: Bool
    /// `s` (shared) rather than `p` (private, copy-on-write).
    public var shared: Bool

    /// Permissions from the four flags of a maps line (`rwxp` / `rwxs`).
    public init(read: Bool, write: Bool, execute: Bool, shared: Bool) {
        (self.read, self.write, self.execute, self.shared) = (read, write, execute, shared)
    }

    /// `rw-p`: private, readable and writable, as a heap or an anonymous mapping.
    public static let readWrite = Permissions(read: true, write: true, execute: false, shared: false)

    public var description: String {
        (read ? "r" : "-") + (write ? "w" : "-") + (execute ? "x" : "-") + (shared ? "s" : "p")
    }
}

/// A device number as `/proc/PID/maps` prints it (`fd:01`, `103:02`).
public struct DeviceNumber: Hashable, Sendable, CustomStringConvertible {
    /// The device's major number.
    public var major: UInt32
    /// The device's minor number.
    public var minor: UInt32
    /// The device `major:minor`.
    public init(major: UInt32, minor: UInt32) {
        self.major = major
        self.minor = minor
    }
    public var description: String {
        let maj = String(major, radix: 16), min = String(minor, radix: 16)
        return (maj.count < 2 ? "0" + maj : maj) + ":" + (min.count < 2 ? "0" + min : min)
    }
}

/// One line of `/proc/PID/maps`.
public struct Mapping: Hashable, Sendable, CustomStringConvertible {
    /// The addresses the mapping covers.
    public var range: AddressRange
    /// What the process may do there.
    public var permissions: Permissions
    /// Offset into the mapped file (0 for anonymous memory).
    public var offset: UInt64
    /// The device of the mapped file (`00:00` for anonymous memory).
    public var device: DeviceNumber
    /// The inode of the mapped file (0 for anonymous memory).
    public var inode: UInt64
    /// The path, with the kernel's `\012` escapes decoded and any ` (deleted)` suffix removed;
    /// empty for anonymous memory; `[heap]`, `[stack]`, `[vdso]`, `[anon:NAME]`… for special mappings.
    public var path: String
    /// The kernel marked the file ` (deleted)`.
    public var isDeleted: Bool

    /// A mapping as a line of `/proc/PID/maps` describes it.
    public init(
        range: AddressRange, permissions: Permissions, offset: UInt64 = 0,
        device: DeviceNumber = DeviceNumber(major: 0, minor: 0), inode: UInt64 = 0,
        path: String = "", isDeleted: Bool = false
    ) {
        self.range = range
        self.permissions = permissions
        self.offset = offset
        self.device = device
        self.inode = inode
        self.path = path
        self.isDeleted = isDeleted
    }

    /// The first address of the mapping.
    public var start: Address { range.start }
    /// The address just past the mapping.
    public var end: Address { range.end }

    /// `[heap]`, `[stack]`, `[vdso]`, `[anon:NAME]` and the like: kernel-named, not a file.
    public var isSpecial: Bool { path.hasPrefix("[") && path.hasSuffix("]") }
    /// Backed by a file (a path that is not a special name).
    public var isFileBacked: Bool { !path.isEmpty && !isSpecial }

    /// The last path component, for `libc.so.6+0x1234` address forms.
    public var basename: String {
        guard isFileBacked, let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// The line as `/proc/PID/maps` would print it (newlines re-escaped).
    public var description: String {
        // The kernel prints addresses and offset as %08lx: at least eight digits.
        func hex8(_ v: UInt64) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: max(0, 8 - s.count)) + s
        }
        var line = hex8(start) + "-" + hex8(end) + " " + permissions.description
        line += " " + hex8(offset)
        line += " " + device.description + " " + String(inode)
        if !path.isEmpty || isDeleted {
            line += " " + path.replacingNewlines() + (isDeleted ? " (deleted)" : "")
        }
        return line
    }
}

extension String {
    fileprivate func replacingNewlines() -> String {
        // Scalars, not Characters: "\r\n" is one Character, and its newline must be escaped too.
        var out = ""
        for scalar in unicodeScalars {
            if scalar == "\n" { out += "\\012" } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }
}
