import Foundation
import VmIO

/// One element of ``MemoryChunks``: bytes that moved, a range stepped over, or the end.
public enum MemoryChunk: Sendable {
    /// Bytes of target memory at `address`, in order.
    case bytes(address: Address, [UInt8])
    /// A range that could not be read, stepped over (``FaultPolicy/skip``; with
    /// ``FaultPolicy/fill`` its zeros come as ``bytes(address:_:)`` after it). Adjacent
    /// holes of one kind come as one.
    case hole(Hole)
    /// The last element: what the whole transfer did (its ``TransferReport/stop`` is the
    /// fault that ended it early under ``FaultPolicy/stop``).
    case end(TransferReport)
}

/// A range of target memory as an `AsyncSequence` of chunks, for a long read or dump that
/// a program consumes at its own pace: at most one chunk waits for the consumer, so memory
/// stays flat for any length.
///
/// The memory is read on a thread of its own, through a ``Target`` opened there (ptrace
/// wants every request of a stop from the thread that made it). With `stopTarget` that
/// thread stops the target for the whole transfer, reads the maps again after the stop,
/// and lets it go at the end.
///
/// Cancelling the consuming task ends the sequence (`next()` returns nil) only once the
/// target is let go: running again, not traced. An iterator dropped before the end (a
/// `break` out of `for try await`) ends the transfer the same way, without waiting.
///
/// Errors are ``TargetError``: the target cannot be opened or stopped, or is gone. A fault
/// is not an error: under ``FaultPolicy/stop`` it ends the sequence, named in the report of
/// ``MemoryChunk/end(_:)``.
public struct MemoryChunks: AsyncSequence, Sendable {
    /// Each chunk, hole, and the report last.
    public typealias Element = MemoryChunk
    /// The errors of opening and stopping the target; a fault is no error.
    public typealias Failure = TargetError

    /// The process read.
    public let pid: Int32
    /// The range read.
    public let range: AddressRange
    /// What a fault does: end the sequence, or step over the page.
    public let policy: FaultPolicy
    /// The most bytes a chunk holds.
    public let chunkSize: Int
    /// Whether the target is held stopped for the whole transfer.
    public let stopTarget: Bool
    /// How long the stop waits for each thread (``Target/attachTimeout``).
    public let attachTimeout: Duration

    /// The chunks of `range` of process `pid`, at most `chunkSize` bytes each, faults
    /// handled by `policy`; with `stopTarget` the target is held stopped meanwhile.
    public init(
        pid: Int32, range: AddressRange, policy: FaultPolicy = .skip, chunkSize: Int = 1 << 20,
        stopTarget: Bool = false, attachTimeout: Duration = .seconds(5)
    ) {
        (self.pid, self.range, self.policy, self.chunkSize) = (pid, range, policy, Swift.max(chunkSize, 1))
        (self.stopTarget, self.attachTimeout) = (stopTarget, attachTimeout)
    }

    /// An iterator with a transfer of its own, which starts at its first `next()`.
    public func makeAsyncIterator() -> Iterator { Iterator(ChunkProducer(self)) }

    /// Takes the chunks one at a time; the transfer starts at the first `next()`.
    public struct Iterator: AsyncIteratorProtocol {
        let producer: ChunkProducer

        init(_ producer: ChunkProducer) { self.producer = producer }

        /// The next chunk; nil after ``MemoryChunk/end(_:)`` or once a cancelled task's
        /// transfer has let the target go.
        ///
        /// Throws what opening the target throws (``TargetError/noSuchProcess(pid:)``, a
        /// zombie, a kernel thread, a permission error with its diagnosis) and, with
        /// `stopTarget`, what ``Target/stop(timeout:)`` throws (``TargetError/attachTimeout(pid:tid:state:)``,
        /// another tracer). A fault is not thrown: it ends the sequence (``FaultPolicy``).
        public mutating func next() async throws(TargetError) -> MemoryChunk? {
            try await next(isolation: nil)
        }

        /// ``next()`` on the caller's actor.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(TargetError) -> MemoryChunk? {
            let channel = producer.channel
            producer.startOnce()
            if Task.isCancelled { channel.cancel() }
            let item = await withTaskCancellationHandler {
                await withCheckedContinuation { channel.take($0) }
            } onCancel: {
                channel.cancel()
            }
            switch item {
            case .element(let chunk): return chunk
            case .failure(let error): throw error
            case .end: return nil
            }
        }
    }
}

extension Target {
    /// This target's memory in `range` as an `AsyncSequence` of chunks (``MemoryChunks``),
    /// read through a target of its own on a thread of its own. A target this one holds
    /// stopped (``stop(timeout:)``) cannot be stopped there again: leave `stopTarget` false.
    public func chunks(
        _ range: AddressRange, policy: FaultPolicy = .skip, chunkSize: Int = 1 << 20, stopTarget: Bool = false
    ) -> MemoryChunks {
        MemoryChunks(
            pid: pid, range: range, policy: policy, chunkSize: chunkSize, stopTarget: stopTarget,
            attachTimeout: attachTimeout)
    }
}

/// The thread that reads for one iterator; when the iterator goes, the transfer is cancelled.
final class ChunkProducer: Sendable {
    let channel = ChunkChannel()
    let chunks: MemoryChunks
    private let started = Locked(false)

    init(_ chunks: MemoryChunks) { self.chunks = chunks }

    deinit { channel.cancel() }

    func startOnce() {
        let wasStarted = started.withLock { (s: inout Bool) -> Bool in
            defer { s = true }
            return s
        }
        guard !wasStarted else { return }
        let (chunks, channel) = (self.chunks, self.channel)
        let thread = Thread { Self.produce(chunks, into: channel) }
        thread.name = "vmio-chunks-\(chunks.pid)"
        thread.start()
    }

    /// Reads the range into `channel`, then lets the target go and hands over the last item.
    static func produce(_ chunks: MemoryChunks, into channel: ChunkChannel) {
        var last: ChunkChannel.Item
        do throws(TargetError) {
            let target = try Target(pid: chunks.pid)
            // The target is let go (resume) when it goes out of scope, on every path.
            defer { target.resume() }
            target.attachTimeout = chunks.attachTimeout
            if chunks.stopTarget {
                try target.stop()
                try target.refresh()
            }
            var pending = TransferReport(requested: 0)
            /// Hands over the holes gathered since the last chunk; false when cancelled.
            func flushHoles() -> Bool {
                defer { pending.holes = [] }
                return pending.holes.allSatisfy { channel.put(.element(.hole($0))) }
            }
            let report = try target.transfer(
                chunks.range, policy: chunks.policy, chunkSize: chunks.chunkSize,
                hole: { pending.addHole($0) }
            ) { (at, chunk) throws(TargetError) -> ChunkAnswer in
                guard flushHoles(), channel.put(.element(.bytes(address: at, Array(chunk)))) else { return .enough }
                return .more
            }
            last = !channel.isCancelled && flushHoles() ? .element(.end(report)) : .end
        } catch {
            last = .failure(error)
        }
        channel.finish(last)
    }
}

/// One chunk at a time between the producing thread and the consuming task.
final class ChunkChannel: Sendable {
    enum Item: Sendable {
        case element(MemoryChunk)
        case failure(TargetError)
        case end
    }

    private struct State {
        /// An item the consumer has not taken yet.
        var item: Item?
        /// A consumer waiting for an item.
        var consumer: CheckedContinuation<Item, Never>?
        var cancelled = false
        /// The producer is done and has let the target go.
        var finished = false
        /// After the final item was taken: only `.end` from now on.
        var drained = false
    }

    private let state = Locked(State())
    /// Signalled when the consumer takes a stored element, or on cancellation.
    private let taken = DispatchSemaphore(value: 0)

    var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// Producer: hands `item` over and waits until the consumer has taken it (or the
    /// transfer is cancelled). False when cancelled.
    func put(_ item: Item) -> Bool {
        enum Next { case cancelled, handed(CheckedContinuation<Item, Never>), stored }
        let next = state.withLock { (s: inout State) -> Next in
            if s.cancelled { return .cancelled }
            if let consumer = s.consumer {
                s.consumer = nil
                return .handed(consumer)
            }
            s.item = item
            return .stored
        }
        switch next {
        case .cancelled: return false
        case .handed(let consumer):
            consumer.resume(returning: item)
            return true
        case .stored:
            taken.wait()
            return !isCancelled
        }
    }

    /// Producer, last: the final item (`.end` for a cancelled transfer), after the target
    /// was let go.
    func finish(_ item: Item) {
        let waiting = state.withLock { (s: inout State) -> (CheckedContinuation<Item, Never>, Item)? in
            s.finished = true
            let final: Item = s.cancelled ? .end : item
            guard let consumer = s.consumer else {
                s.item = final
                return nil
            }
            s.consumer = nil
            s.drained = true
            return (consumer, final)
        }
        if let (consumer, final) = waiting { consumer.resume(returning: final) }
    }

    /// Consumer: the next item, now or when the producer hands it over.
    func take(_ consumer: CheckedContinuation<Item, Never>) {
        enum Now { case item(Item, signal: Bool), wait }
        let now = state.withLock { (s: inout State) -> Now in
            if s.drained { return .item(.end, signal: false) }
            if let item = s.item {
                s.item = nil
                if s.finished { s.drained = true }
                return .item(item, signal: !s.finished)
            }
            s.consumer = consumer
            return .wait
        }
        if case .item(let item, let signal) = now {
            if signal { taken.signal() }
            consumer.resume(returning: item)
        }
    }

    /// Ends the transfer: the producer stops at its next hand-over (or now, if it waits for
    /// one), lets the target go, and only then ends a consumer that waits.
    func cancel() {
        let wake = state.withLock { (s: inout State) -> Bool in
            guard !s.cancelled, !s.finished else { return false }
            s.cancelled = true
            s.item = nil
            return true
        }
        if wake { taken.signal() }
    }
}
