import CVmio
import VmIO

/// A byte pattern with wildcards (`de ad ?? ef`) and an alignment for hits.
public struct BytePattern: Sendable, Hashable {
    /// The bytes to find (masked-out positions hold 0).
    public let bytes: [UInt8]
    /// `mask[i]` is false where the pattern has a `??` wildcard.
    public let mask: [Bool]
    /// Hits must start at an address that is a multiple of this.
    public let alignment: UInt64
    /// The longest run of known bytes: found with `memmem`, then the rest is checked.
    let anchor: Range<Int>
    /// A value of 2, 4 or 8 known bytes at its own alignment (a typed scan or search): the
    /// value repeated over a 64-bit word, for the word-at-a-time scan; nil for any other pattern.
    let word: UInt64?

    /// A pattern of `bytes`; `mask` (one flag a byte, true: must match) makes some positions wildcards, and hits start
    /// at multiples of `alignment`. `VmIoError.badPattern(_:reason:)` for an empty pattern, a mask of another length,
    /// or an alignment of 0.
    public init(bytes: [UInt8], mask: [Bool]? = nil, alignment: UInt64 = 1) throws(VmIoError) {
        let mask = mask ?? Array(repeating: true, count: bytes.count)
        guard !bytes.isEmpty, mask.count == bytes.count else {
            throw .badPattern("", reason: .empty)
        }
        guard alignment > 0 else { throw .badPattern("", reason: .zeroAlignment) }
        var best = 0..<0, start = 0
        for i in 0...bytes.count {
            if i == bytes.count || !mask[i] {
                if i - start > best.count { best = start..<i }
                start = i + 1
            }
        }
        guard !best.isEmpty else { throw .badPattern("", reason: .noKnownByte) }
        self.bytes = bytes
        self.mask = mask
        self.alignment = alignment
        self.anchor = best
        if [2, 4, 8].contains(bytes.count), alignment == UInt64(bytes.count), !mask.contains(false) {
            let value = bytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            var word: UInt64 = 0
            for _ in 0..<8 / bytes.count { word = word << (8 * bytes.count) | value }
            self.word = word
        } else {
            word = nil
        }
    }

    /// Parses hex with `??` wildcards: `de ad ?? ef`, `dead??ef`.
    ///
    /// Throws `VmIoError.badPattern`: an odd number of digits, a pair that is neither
    /// a hex byte nor `??`, no bytes at all, or a zero `alignment`.
    public init(hex text: String, alignment: UInt64 = 1) throws(VmIoError) {
        var bytes: [UInt8] = [], mask: [Bool] = []
        var digits = Array(text.filter { !$0.isWhitespace && $0 != ":" })
        if digits.count >= 2, digits[0] == "0", digits[1] == "x" || digits[1] == "X" { digits.removeFirst(2) }
        guard digits.count % 2 == 0 else {
            throw .badPattern(text, reason: .oddDigitCount)
        }
        var i = 0
        while i < digits.count {
            let pair = String(digits[i..<i + 2])
            if pair == "??" {
                bytes.append(0)
                mask.append(false)
            } else if pair.allSatisfy({ $0.isASCII && $0.isHexDigit }), let b = UInt8(pair, radix: 16) {
                // Digits checked first: UInt8(_:radix:) alone takes "+f" for 0x0f and "-0" for 0.
                bytes.append(b)
                mask.append(true)
            } else {
                throw .badPattern(text, reason: .notAByteOrWildcard(String(pair)))
            }
            i += 2
        }
        try self.init(bytes: bytes, mask: mask, alignment: alignment)
    }

    /// The pattern's length in bytes.
    public var count: Int { bytes.count }

    /// Calls `hit` with the offset of each match that starts in `buffer[startRange]` and
    /// lies wholly in `buffer`, in increasing order; stops when `hit` returns false.
    /// `base` is the address of `buffer[0]` (for alignment).
    @discardableResult
    public func scan(
        _ buffer: UnsafeRawBufferPointer, base: Address, starts startRange: Range<Int>? = nil,
        hit: (Int) -> Bool
    ) -> Bool {
        let n = buffer.count, m = bytes.count
        let starts = startRange ?? 0..<n
        guard n >= m, let base0 = buffer.baseAddress else { return true }
        if let word { return scanWords(base0, n, base: base, starts: starts, word: word, hit: hit) }
        return bytes.withUnsafeBytes { pat -> Bool in
            let anchorPtr = pat.baseAddress! + anchor.lowerBound
            // The anchor of a match starting at s sits at s + anchor.lowerBound.
            var from = starts.lowerBound + anchor.lowerBound
            let lastStart = min(starts.upperBound - 1, n - m)
            while from <= lastStart + anchor.lowerBound {
                let room = lastStart + anchor.lowerBound + anchor.count - from
                guard room >= anchor.count,
                    let found = vmio_memmem(base0 + from, room, anchorPtr, anchor.count)
                else { return true }
                let at = base0.distance(to: found)
                let s = at - anchor.lowerBound
                if (base &+ UInt64(s)) % alignment == 0 && matches(base0 + s) {
                    if !hit(s) { return false }
                }
                from = at + 1
            }
            return true
        }
    }

    /// `scan` of a value at its own alignment (``word``): 64 bytes at a time, the value's
    /// slots XORed with it and tested for a zero slot together (eight 64-bit words, which the
    /// optimiser turns into vector operations); a block with a zero slot is looked at slot by
    /// slot. memmem steps at most a pattern's length at a time, a few bytes for a typed value.
    private func scanWords(
        _ start: UnsafeRawPointer, _ n: Int, base: Address, starts: Range<Int>, word: UInt64, hit: (Int) -> Bool
    ) -> Bool {
        let m = bytes.count
        let lastStart = min(starts.upperBound - 1, n - m)
        // The first offset in the window at an aligned address.
        let misalignment = Int((base &+ UInt64(starts.lowerBound)) % UInt64(m))
        var s = starts.lowerBound + (misalignment == 0 ? 0 : m - misalignment)
        // One bit at the bottom and at the top of each slot: a slot of x is zero exactly
        // when it is where (x - ones) & ~x & highs has a bit set, or below such a slot (a borrow).
        let ones = UInt64.max / (UInt64.max >> (64 - 8 * m)), highs = ones << (8 * m - 1)
        while s + 64 <= lastStart + m {
            var found: UInt64 = 0
            for i in 0..<8 {
                let x = start.loadUnaligned(fromByteOffset: s + 8 * i, as: UInt64.self) ^ word
                found |= (x &- ones) & ~x & highs
            }
            if found != 0 {
                for slot in stride(from: s, to: s + 64, by: m) where slotMatches(start + slot) {
                    if !hit(slot) { return false }
                }
            }
            s += 64
        }
        while s <= lastStart {
            if slotMatches(start + s) && !hit(s) { return false }
            s += m
        }
        return true
    }

    /// Whether the 2, 4 or 8 bytes at `p` are the value of ``word``.
    @inline(__always)
    private func slotMatches(_ p: UnsafeRawPointer) -> Bool {
        let mask = UInt64.max >> (64 - 8 * bytes.count)
        let value: UInt64 =
            switch bytes.count {
            case 2: UInt64(p.loadUnaligned(as: UInt16.self))
            case 4: UInt64(p.loadUnaligned(as: UInt32.self))
            default: p.loadUnaligned(as: UInt64.self)
            }
        return value == word! & mask
    }

    private func matches(_ p: UnsafeRawPointer) -> Bool {
        for i in 0..<bytes.count where mask[i] && p.load(fromByteOffset: i, as: UInt8.self) != bytes[i] {
            return false
        }
        return true
    }
}

/// A match of a search.
public struct SearchHit: Sendable {
    /// Where the pattern starts.
    public let address: Address
    /// The mapping that holds it.
    public let mapping: Mapping
    /// Its offset from the start of the mapping.
    public var offsetInMapping: UInt64 { address - mapping.start }
}

/// What a search did.
public struct SearchReport: Sendable {
    /// The hits, in address order.
    public var hits: [SearchHit] = []
    /// Bytes scanned.
    public var scanned: UInt64 = 0
    /// Unreadable ranges stepped over (never fatal).
    public var holes: [Hole] = []
    /// The search stopped at `max` hits.
    public var truncated = false
}

extension Target {
    /// Searches the selected regions for `pattern`, streaming through a bounded buffer;
    /// matches that straddle chunk (or adjacent-mapping) boundaries are found. Unreadable
    /// pages are skipped and reported as holes. Stops after `max` hits. Each chunk of
    /// `chunkSize` bytes is read and matched in two halves at once, one on a helper thread
    /// (ARCHITECTURE.md).
    ///
    /// Throws ``TargetError/transferStopped(_:)`` when a read stops other than at a fault (the
    /// process gone).
    public func search(
        _ pattern: BytePattern, in regions: [(mapping: Mapping, range: AddressRange)], max: Int,
        chunkSize: Int = 4 << 20, progress: ((UInt64) -> Void)? = nil
    ) throws(TargetError) -> SearchReport {
        var report = SearchReport()
        let keep = pattern.count - 1
        // The last `keep` bytes seen, and the address just past them, for straddling matches.
        var tail: [UInt8] = []
        var tailEnd: Address = 0
        var currentMapping: Mapping?
        var previousMapping: Mapping?
        func record(_ address: Address) -> Bool {
            let owner =
                (currentMapping?.range.contains(address) ?? false)
                ? currentMapping! : (previousMapping ?? currentMapping!)
            report.hits.append(SearchHit(address: address, mapping: owner))
            if report.hits.count >= max {
                report.truncated = true
                return false
            }
            return true
        }
        // Each chunk read and matched in two halves at once, one on each thread (HelperThread);
        // without a helper (VMIO_ONE_THREAD=1, no thread), read on this thread while a second
        // matches (transferOverlapped), or on this thread alone.
        let helper = Self.oneThread ? nil : HelperThread()
        defer { helper?.stop() }
        /// The matches in `chunk` (at `at`), recorded in order; false when the search ends.
        func scanChunk(_ chunk: UnsafeRawBufferPointer, at: Address) -> Bool {
            guard let helper, let half = ProcessMemory.splitPoint(chunk.count) else {
                return pattern.scan(chunk, base: at, hit: { record(at + UInt64($0)) })
            }
            let wanted = max - report.hits.count
            var here: [Int] = []
            var there: [Int] = []
            helper.both(
                {
                    pattern.scan(chunk, base: at, starts: 0..<half) {
                        here.append($0)
                        return here.count < wanted
                    }
                },
                {
                    pattern.scan(chunk, base: at, starts: half..<chunk.count) {
                        there.append($0)
                        return there.count < wanted
                    }
                })
            for offset in here + there {
                if !record(at + UInt64(offset)) { return false }
            }
            return true
        }
        for (mapping, range) in regions {
            previousMapping = currentMapping
            currentMapping = mapping
            // The region's holes, merged as a transfer's report merges them.
            var regionHoles = TransferReport(requested: 0)
            let consume = { (item: OverlappedItem) throws(TargetError) -> Bool in
                let (at, chunk): (Address, UnsafeRawBufferPointer)
                switch item {
                case .hole(let hole):
                    // Only the holes before the search ended: the reader may have gone further.
                    regionHoles.addHole(hole)
                    return true
                case .bytes(let address, let bytes): (at, chunk) = (address, bytes)
                }
                defer {
                    report.scanned += UInt64(chunk.count)
                    progress?(report.scanned)
                }
                // Matches starting in the carried tail and ending in this chunk.
                if keep > 0, !tail.isEmpty, tailEnd == at {
                    let joined = tail + chunk.prefix(keep)
                    let tailStart = at - UInt64(tail.count)
                    var go = true
                    joined.withUnsafeBytes { raw in
                        go = pattern.scan(raw, base: tailStart, starts: 0..<tail.count) {
                            record(tailStart + UInt64($0))
                        }
                    }
                    if !go { return false }
                }
                if !scanChunk(chunk, at: at) { return false }
                if keep > 0 {
                    if chunk.count >= keep {
                        tail = Array(chunk.suffix(keep))
                    } else {
                        tail = Array((tail + chunk).suffix(keep))
                    }
                    tailEnd = at + UInt64(chunk.count)
                }
                return true
            }
            let streamed: TransferReport
            if let helper {
                streamed = try transferInline(range, .skip, chunkSize, helper: helper, consume)
            } else {
                // The ring's slots are best at 1 MiB: larger, the matcher no longer finds in its
                // cache what the reader just wrote (README.md, "Benchmarks").
                streamed = try transferOverlapped(
                    range, policy: .skip, chunkSize: Swift.min(chunkSize, 1 << 20), consume: consume)
            }
            report.holes += regionHoles.holes
            // Faults are holes, but a stream cut short (target gone, permission) is not a
            // finished search: say so instead of reporting a partial scan as complete.
            if let stop = streamed.stop { throw .transferStopped(stop) }
            if report.truncated { break }
        }
        return report
    }
}
