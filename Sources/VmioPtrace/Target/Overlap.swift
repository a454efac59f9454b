import Foundation
import Glibc
import VmIO

/// What the consumer of an overlapped transfer is handed, in the order the reader met it.
enum OverlappedItem {
    /// Bytes of target memory at an address (valid only during the call).
    case bytes(Address, UnsafeRawBufferPointer)
    /// A range the reader stepped over (before `.fill` hands its zeros as bytes).
    case hole(Hole)
}

extension Target {
    /// ``transfer(_:policy:chunkSize:into:chunkBuffer:hole:consume:)`` on two threads: this
    /// thread reads (ptrace wants every request of a stop from the thread that made it) into a
    /// ring of `slots` buffers of `chunkSize` bytes, allocated once, and a second thread hands
    /// each chunk and hole to `consume` in the reader's order, so a dump's writes and a search's
    /// matching run while the next chunks are read: the elapsed time approaches the slower of
    /// the two instead of their sum.
    ///
    /// `consume` returns false to end the transfer; what it throws ends it too and is thrown
    /// here, once the reader has stopped (nothing more is read than the ring holds). The
    /// report is the reader's: what moved, the holes, the fault that stopped it. A range of one
    /// chunk or less, or a thread that cannot be started, is done on this thread alone (and
    /// every range with `VMIO_ONE_THREAD=1`).
    ///
    /// `readerEnded` runs on this thread when the reading has ended, before the consumer is
    /// waited for (a test holds the consumer back until then, so the reader is surely ahead).
    ///
    /// `ahead`, when given, is work for this thread while it waits for a free slot: it is handed,
    /// in order and a chunk at most at a time, the parts of `range` not read yet, past the chunk
    /// read next and at most ``aheadLimit`` past what the consumer has used (a dump to a tmpfs
    /// allocates its file's pages there: README.md, "Pages made ahead"). Never on one thread.
    ///
    /// Throws what `consume` throws, else what ``transfer(_:policy:chunkSize:into:chunkBuffer:hole:consume:)``
    /// throws.
    func transferOverlapped(
        _ range: AddressRange, policy: FaultPolicy, chunkSize: Int, slots: Int = 4,
        readerEnded: () -> Void = {}, ahead: ((AddressRange) -> Void)? = nil,
        consume: (OverlappedItem) throws(TargetError) -> Bool
    ) throws(TargetError) -> TransferReport {
        let chunk = max(chunkSize, 1)
        guard range.count > UInt64(chunk), !Self.oneThread else {
            return try transferInline(range, policy, chunk, consume)
        }
        let ring = ChunkRing(slots: max(slots, 2), chunkSize: chunk)
        // The worker is joined before this returns: the closure never outlives the call.
        return try withoutActuallyEscaping(consume) { (consume) throws(TargetError) -> TransferReport in
            let worker = ConsumerWork { ring.drain(into: consume) }
            guard let thread = Sys.startThread(worker) else { return try transferInline(range, policy, chunk, consume) }
            var current = ring.slot(ring.takeFree() ?? 0)
            var sentEnd = range.start
            var handedAhead = range.start
            let work = ahead.map { ahead in
                {
                    let step = UInt64(chunk)
                    let from = max(handedAhead, sentEnd.saturatingAdding(step))
                    let to = min(range.end, (ring.consumedEnd ?? range.start).saturatingAdding(Self.aheadLimit))
                    guard from < to else { return false }
                    let piece = AddressRange(clamping: from, min(to, from.saturatingAdding(step)))
                    ahead(piece)
                    handedAhead = piece.end
                    return true
                }
            }
            let report: TransferReport
            do throws(TargetError) {
                report = try transfer(
                    range, policy: policy, chunkSize: chunk, chunkBuffer: { current },
                    hole: { ring.send(.hole($0)) }
                ) { (at, bytes) throws(TargetError) -> ChunkAnswer in
                    ring.send(.bytes(at, slot: ring.index(of: bytes), count: bytes.count))
                    sentEnd = at + UInt64(bytes.count)
                    guard let next = ring.takeFree(whileWaiting: work) else { return .enough }
                    current = ring.slot(next)
                    return .more
                }
            } catch {
                readerEnded()
                ring.finishReading(aborted: true)
                Sys.joinThread(thread)
                throw ring.consumerError ?? error
            }
            readerEnded()
            ring.finishReading(aborted: false)
            Sys.joinThread(thread)
            if let error = ring.consumerError { throw error }
            return report
        }
    }

    /// How far past what the consumer has used an overlapped transfer hands ranges to its
    /// `ahead`: 32 MiB (measured for a dump to a tmpfs: enough to keep the reader busy while
    /// it waits, near enough that the pages are used soon after).
    static let aheadLimit: UInt64 = 32 << 20

    /// `VMIO_ONE_THREAD=1` in the environment: every transfer on one thread, as before the
    /// overlap (the benchmark's "before" rows, measured in the same run).
    static let oneThread = ProcessInfo.processInfo.environment["VMIO_ONE_THREAD"] == "1"

    /// The same transfer on this thread alone, through one buffer; with `helper`, each large
    /// chunk read in two halves at once, one on the helper.
    func transferInline(
        _ range: AddressRange, _ policy: FaultPolicy, _ chunk: Int, helper: HelperThread? = nil,
        _ consume: (OverlappedItem) throws(TargetError) -> Bool
    ) throws(TargetError) -> TransferReport {
        var holeError: TargetError?
        var holeEnded = false
        // A hole is handed on as it is met; what its consumer says takes effect at the next chunk.
        let report = try transfer(
            range, policy: policy, chunkSize: chunk, helper: helper,
            hole: { hole in
                guard !holeEnded, holeError == nil else { return }
                do throws(TargetError) { holeEnded = try !consume(.hole(hole)) } catch { holeError = error }
            }
        ) { (at, bytes) throws(TargetError) -> ChunkAnswer in
            if let holeError { throw holeError }
            if holeEnded { return .enough }
            return try consume(.bytes(at, bytes)) ? .more : .enough
        }
        if let holeError { throw holeError }
        return report
    }
}

/// The consumer's side of an overlapped transfer, run on the worker thread.
final class ConsumerWork: @unchecked Sendable {
    // Unchecked: `run` is touched by the worker alone, between its start and its join.
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// The ring between the reader and the consumer: `slots` buffers of one allocation, a queue
/// of what was read (chunks by slot, holes) and the free slots, under one pthread mutex with
/// one condition, which both sides wait on (ThreadSanitizer sees every hand-over through it).
final class ChunkRing: @unchecked Sendable {
    // Unchecked: `state` is read and written only with `lock` held; a slot's bytes are written
    // by the reader before it is queued and read by the consumer before it is freed again,
    // each hand-over through the lock.
    enum Item {
        case bytes(Address, slot: Int, count: Int)
        case hole(Hole)
    }

    private struct State {
        var queued: [Item] = []
        var free: [Int]
        /// The reader is done: the consumer drains what is queued, then ends.
        var readerDone = false
        /// The reader failed: the consumer ends without draining.
        var readerAborted = false
        /// The consumer wants no more (or failed): the reader stops at its next chunk.
        var consumerEnded = false
        var consumerError: TargetError?
        /// The consumer has returned.
        var consumerExited = false
        /// The end of the last chunk the consumer has used (nil before the first).
        var consumedEnd: Address?
    }

    private let storage: UnsafeMutableRawBufferPointer
    private let chunkSize: Int
    private var state: State
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init(slots: Int, chunkSize: Int) {
        self.chunkSize = chunkSize
        storage = .allocate(byteCount: slots * chunkSize, alignment: 4096)
        state = State(free: Array((0..<slots).reversed()))
        pthread_mutex_init(lock, nil)
        pthread_cond_init(changed, nil)
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(lock)
        lock.deallocate()
        changed.deallocate()
        storage.deallocate()
    }

    private func locked<T>(_ body: (inout State) -> T) -> T {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return body(&state)
    }

    /// Waits on the condition until `ready` holds, then runs `body`, all under the lock.
    private func waiting<T>(until ready: (State) -> Bool, _ body: (inout State) -> T) -> T {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        while !ready(state) { pthread_cond_wait(changed, lock) }
        let result = body(&state)
        pthread_cond_broadcast(changed)
        return result
    }

    /// Slot `index`'s buffer.
    func slot(_ index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: storage[index * chunkSize..<(index + 1) * chunkSize])
    }

    /// The slot that holds `bytes` (a chunk read into ``slot(_:)``).
    func index(of bytes: UnsafeRawBufferPointer) -> Int {
        UnsafeRawPointer(storage.baseAddress!).distance(to: bytes.baseAddress!) / chunkSize
    }

    /// The consumer's error, once it has returned.
    var consumerError: TargetError? { locked { $0.consumerError } }

    // MARK: The reader

    /// The end of the last chunk the consumer has used (nil before the first).
    var consumedEnd: Address? { locked { $0.consumedEnd } }

    /// A free slot, when one is (waiting for the consumer to free one); nil once the consumer
    /// ended. While none is free, `work` runs again and again until it says it did nothing.
    func takeFree(whileWaiting work: (() -> Bool)? = nil) -> Int? {
        if let work {
            while true {
                let taken: Int?? = locked { s in
                    s.consumerEnded ? .some(nil) : s.free.isEmpty ? nil : .some(s.free.removeLast())
                }
                if let taken { return taken }
                if !work() { break }
            }
        }
        return waiting(until: { !$0.free.isEmpty || $0.consumerEnded }) { s in
            s.consumerEnded ? nil : s.free.removeLast()
        }
    }

    /// Queues what was read for the consumer.
    func send(_ item: Item) {
        waiting(until: { _ in true }) { s in s.queued.append(item) }
    }

    /// Ends the reading (`aborted`: the consumer drains nothing more) and waits until the consumer has returned.
    func finishReading(aborted: Bool) {
        waiting(until: { _ in true }) { s in
            s.readerDone = true
            s.readerAborted = aborted
        }
        waiting(until: { $0.consumerExited }) { _ in }
    }

    // MARK: The consumer

    /// The worker's loop: each queued item to `consume`, in order, its slot freed after it,
    /// until the reader is done and all is drained, or `consume` says no more or throws.
    func drain(into consume: (OverlappedItem) throws(TargetError) -> Bool) {
        var failure: TargetError?
        var goOn = true
        var batch: [Item] = []
        while goOn, nextBatch(into: &batch) {
            for item in batch {
                do throws(TargetError) {
                    switch item {
                    case .bytes(let at, let index, let count):
                        goOn = try consume(.bytes(at, UnsafeRawBufferPointer(rebasing: slot(index)[0..<count])))
                        waiting(until: { _ in true }) { s in
                            s.free.append(index)
                            s.consumedEnd = at + UInt64(count)
                        }
                    case .hole(let hole):
                        goOn = try consume(.hole(hole))
                    }
                } catch {
                    failure = error
                    goOn = false
                }
                if !goOn { break }
            }
        }
        waiting(until: { _ in true }) { s in
            s.consumerEnded = true
            s.consumerError = failure
            s.consumerExited = true
        }
    }

    /// Swaps what the reader queued since the last batch into `batch` (the two arrays keep
    /// their storage: nothing is allocated a chunk), waiting for it; false when the reader is
    /// done and nothing is left, or it failed.
    private func nextBatch(into batch: inout [Item]) -> Bool {
        batch.removeAll(keepingCapacity: true)
        return waiting(until: { !$0.queued.isEmpty || $0.readerDone }) { s in
            if s.readerAborted || s.queued.isEmpty { return false }
            swap(&s.queued, &batch)
            return true
        }
    }
}
