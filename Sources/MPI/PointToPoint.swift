import CMPI

/// Matches a message from any rank, in `receive` and `probe`.
public let anySource = Int(MPI_ANY_SOURCE)
/// Matches a message with any tag, in `receive` and `probe`.
public let anyTag = Int(MPI_ANY_TAG)

extension Communicator {
    // MARK: Blocking

    /// Sends a contiguous buffer to `destination` with `tag`.
    public func send<T: MPIElement>(_ buffer: UnsafeBufferPointer<T>, to destination: Int, tag: Int = 0) throws(MPIError) {
        let count = try mpiCount(buffer.count, "MPI_Send")
        try check(MPI_Send(buffer.baseAddress, count, T.mpiDatatype, Int32(destination), Int32(tag), handle), "MPI_Send")
    }

    public func send<T: MPIElement>(_ array: [T], to destination: Int, tag: Int = 0) throws(MPIError) {
        try array.withUnsafeBufferPointer { (buffer) throws(MPIError) in try send(buffer, to: destination, tag: tag) }
    }

    /// Receives into `buffer`, which must be large enough for the message.
    @discardableResult
    public func receive<T: MPIElement>(into buffer: UnsafeMutableBufferPointer<T>, from source: Int, tag: Int = 0) throws(MPIError) -> MessageStatus {
        let count = try mpiCount(buffer.count, "MPI_Recv")
        var status = MPI_Status()
        try check(MPI_Recv(buffer.baseAddress, count, T.mpiDatatype, Int32(source), Int32(tag), handle, &status), "MPI_Recv")
        return try MessageStatus(status)
    }

    /// Receives a message of unknown length: probes for its size, then receives it whole.
    public func receive<T: MPIElement>(_: T.Type, from source: Int, tag: Int = 0) throws(MPIError) -> [T] {
        let status = try probe(from: source, tag: tag)
        return try receive(T.self, count: status.count(of: T.self), from: status.source, tag: status.tag)
    }

    /// Receives exactly `count` elements.
    public func receive<T: MPIElement>(_: T.Type, count: Int, from source: Int, tag: Int = 0) throws(MPIError) -> [T] {
        var error: MPIError?
        let array = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            do throws(MPIError) {
                let status = try receive(into: buffer, from: source, tag: tag)
                initialized = status.count(of: T.self)
            } catch let failure {
                error = failure
                initialized = 0
            }
        }
        if let error { throw error }
        return array
    }

    /// Waits for a matching message and reports its source, tag and size without receiving it.
    public func probe(from source: Int = anySource, tag: Int = anyTag) throws(MPIError) -> MessageStatus {
        var status = MPI_Status()
        try check(MPI_Probe(Int32(source), Int32(tag), handle, &status), "MPI_Probe")
        return try MessageStatus(status)
    }

    /// Like `probe`, but returns `nil` at once when no matching message has arrived.
    public func probeIfAvailable(from source: Int = anySource, tag: Int = anyTag) throws(MPIError) -> MessageStatus? {
        var status = MPI_Status()
        var flag: Int32 = 0
        try check(MPI_Iprobe(Int32(source), Int32(tag), handle, &flag, &status), "MPI_Iprobe")
        return flag != 0 ? try MessageStatus(status) : nil
    }

    // MARK: Nonblocking

    /// Starts sending `buffer`. The memory must stay valid and unchanged until the request completes.
    public func sendAsync<T: MPIElement>(_ buffer: UnsafeBufferPointer<T>, to destination: Int, tag: Int = 0) throws(MPIError) -> Request {
        let count = try mpiCount(buffer.count, "MPI_Isend")
        var request: MPI_Request? = nil
        try check(MPI_Isend(buffer.baseAddress, count, T.mpiDatatype, Int32(destination), Int32(tag), handle, &request), "MPI_Isend")
        return Request(request, keeping: nil)
    }

    /// Starts sending a copy of `array`; the request keeps the copy alive until it completes.
    public func sendAsync<T: MPIElement>(_ array: [T], to destination: Int, tag: Int = 0) throws(MPIError) -> Request {
        let storage = MessageStorage<T>(copying: array)
        let request = try sendAsync(UnsafeBufferPointer(storage.buffer), to: destination, tag: tag)
        request.keepAlive = storage
        return request
    }

    /// Starts sending `array` as it is, without a copy: the request holds the array until it completes.
    /// A Swift array is copy-on-write, so a caller that changes its own array meanwhile changes a copy,
    /// and the bytes in flight stay as they were. (The buffer address outlives `withUnsafeBufferPointer`
    /// on purpose: a native array's storage does not move while a reference holds it unchanged.)
    /// How a model-parallel rank sends a parameter or an activation it also keeps, at no extra memory.
    public func sendAsync<T: MPIElement>(sharing array: [T], to destination: Int, tag: Int = 0) throws(MPIError) -> Request {
        let held = HeldArray(array)
        let address = held.array.withUnsafeBufferPointer { $0 }
        let request = try sendAsync(address, to: destination, tag: tag)
        request.keepAlive = held
        return request
    }

    /// Starts receiving into `buffer`. The memory must stay valid until the request completes.
    public func receiveAsync<T: MPIElement>(into buffer: UnsafeMutableBufferPointer<T>, from source: Int, tag: Int = 0) throws(MPIError) -> Request {
        let count = try mpiCount(buffer.count, "MPI_Irecv")
        var request: MPI_Request? = nil
        try check(MPI_Irecv(buffer.baseAddress, count, T.mpiDatatype, Int32(source), Int32(tag), handle, &request), "MPI_Irecv")
        return Request(request, keeping: nil)
    }

    /// Starts receiving `count` elements into storage the request owns; read them with `ReceiveRequest.wait()`.
    public func receiveAsync<T: MPIElement>(_: T.Type, count: Int, from source: Int, tag: Int = 0) throws(MPIError) -> ReceiveRequest<T> {
        let storage = MessageStorage<T>(count: count)
        let request = try receiveAsync(into: storage.buffer, from: source, tag: tag)
        request.keepAlive = storage
        return ReceiveRequest(request: request, storage: storage)
    }
}

/// An array a nonblocking send reads while it is in flight.
final class HeldArray<T: MPIElement>: @unchecked Sendable {
    let array: [T]
    init(_ array: [T]) { self.array = array }
}

/// Heap memory that a nonblocking operation reads or writes while it is in flight.
final class MessageStorage<T: MPIElement>: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<T>

    init(count: Int) {
        buffer = .allocate(capacity: Swift.max(count, 0))
    }

    init(copying array: [T]) {
        buffer = .allocate(capacity: array.count)
        _ = buffer.initialize(from: array)
    }

    deinit { buffer.deallocate() }
}

/// A nonblocking send or receive in flight.
public final class Request: @unchecked Sendable {
    // @unchecked: used by one thread at a time, like the MPI calls it wraps.
    var handle: MPI_Request?
    var keepAlive: AnyObject?
    private(set) var completedStatus: MPI_Status?

    init(_ handle: MPI_Request?, keeping keepAlive: AnyObject?) {
        self.handle = handle
        self.keepAlive = keepAlive
    }

    /// Blocks until the operation completes.
    @discardableResult
    public func wait() throws(MPIError) -> MessageStatus {
        if let completedStatus { return try MessageStatus(completedStatus) }
        var status = MPI_Status()
        try check(MPI_Wait(&handle, &status), "MPI_Wait")
        completedStatus = status
        return try MessageStatus(status)
    }

    /// Returns the status if the operation has completed, `nil` if it is still in flight.
    public func test() throws(MPIError) -> MessageStatus? {
        if let completedStatus { return try MessageStatus(completedStatus) }
        var status = MPI_Status()
        var flag: Int32 = 0
        try check(MPI_Test(&handle, &flag, &status), "MPI_Test")
        guard flag != 0 else { return nil }
        completedStatus = status
        return try MessageStatus(status)
    }

    /// Waits for all requests with one `MPI_Waitall`.
    public static func waitAll(_ requests: [Request]) throws(MPIError) {
        let pending = requests.filter { $0.completedStatus == nil }
        guard !pending.isEmpty else { return }
        var handles = pending.map(\.handle)
        var statuses = [MPI_Status](repeating: MPI_Status(), count: pending.count)
        let code = MPI_Waitall(Int32(handles.count), &handles, &statuses)
        for (request, (handle, status)) in zip(pending, zip(handles, statuses)) {
            request.handle = handle
            if code == MPI_SUCCESS { request.completedStatus = status }
        }
        try check(code, "MPI_Waitall")
    }
}

/// A nonblocking receive whose buffer the request owns.
public struct ReceiveRequest<T: MPIElement>: @unchecked Sendable {
    public let request: Request
    let storage: MessageStorage<T>

    /// Waits for the message and returns its elements.
    public func wait() throws(MPIError) -> [T] {
        let status = try request.wait()
        return Array(storage.buffer.prefix(status.count(of: T.self)))
    }
}
