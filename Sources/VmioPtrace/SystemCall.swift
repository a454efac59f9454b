/// The system call a thread is in, by the number the kernel keeps in `orig_rax`, named from
/// the kernel's tables for the target's ABI (`SystemCallNames.swift`, generated from the
/// Linux UAPI headers by `scripts/gen-syscall-names`).
public enum SystemCall {
    /// `__X32_SYSCALL_BIT`: set in the numbers of system calls made through the x32 ABI.
    static let x32Bit: UInt64 = 0x4000_0000

    /// The name of system call `number` made by a process of `abi`, nil when the thread is in
    /// no system call (`orig_rax` is -1) or the number is not in the tables (a call newer than
    /// the headers the table was generated from). An i386 process's numbers are i386 ones;
    /// an x86-64 process's number with the x32 bit set is an x32 one.
    public static func name(_ number: UInt64, abi: TargetABI = .host) -> String? {
        if abi.machine == 3 { return lookup(i386Names, number) }
        if abi.machine == 62 {
            if number & x32Bit != 0 { return lookup(x32Names, number & ~x32Bit) }
            return lookup(x86_64Names, number)
        }
        return nil
    }

    /// The generated tables by number, each read once, on first use.
    static let x86_64Names = names(byNumber: x86_64Table)
    static let i386Names = names(byNumber: i386Table)
    static let x32Names = names(byNumber: x32Table)

    /// The names of a generated table indexed by number, nil where a number is unused. The table
    /// lists the names in the order of their numbers from 0, separated by white space; where
    /// numbers are left unused, the number of the next name stands before it.
    static func names(byNumber table: String) -> [String?] {
        var names: [String?] = []
        for word in table.split(whereSeparator: \.isWhitespace) {
            if let number = Int(word) {
                precondition(number >= names.count, "system-call numbers out of order at \(number)")
                names += repeatElement(nil, count: number - names.count)
            } else {
                names.append(String(word))
            }
        }
        return names
    }

    private static func lookup(_ table: [String?], _ number: UInt64) -> String? {
        number < UInt64(table.count) ? table[Int(number)] : nil
    }
}
