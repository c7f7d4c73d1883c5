import CMPI

/// Collectives: every rank of the communicator calls the same ones in the same order.
extension Communicator {
    /// Copies `root`'s buffer into every other rank's buffer of the same length.
    public func broadcast<T: MPIElement>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws(MPIError) {
        let count = try mpiCount(buffer.count, "MPI_Bcast")
        try check(MPI_Bcast(buffer.baseAddress, count, T.mpiDatatype, Int32(root), handle), "MPI_Bcast")
    }

    /// Replaces `array` on every rank by root's. The length may differ between ranks; root's wins.
    public func broadcast<T: MPIElement>(_ array: inout [T], root: Int) throws(MPIError) {
        var count = [array.count]
        try count.withUnsafeMutableBufferPointer { (buffer) throws(MPIError) in try broadcast(buffer, root: root) }
        if rank != root { array = [T](unsafeUninitializedCapacity: count[0]) { _, n in n = count[0] } }
        try array.withUnsafeMutableBufferPointer { (buffer) throws(MPIError) in try broadcast(buffer, root: root) }
    }

    /// Root's bytes on every rank (plans and configurations travel this way as JSON).
    public func broadcastBytes(_ bytes: [UInt8], root: Int) throws(MPIError) -> [UInt8] {
        var copy = bytes
        try broadcast(&copy, root: root)
        return copy
    }

    /// Combines `buffer` element by element across ranks, in place, and leaves the result on every rank.
    public func allreduce<T: MPIElement>(_ buffer: UnsafeMutableBufferPointer<T>, _ operation: ReductionOperation) throws(MPIError) {
        let count = try mpiCount(buffer.count, "MPI_Allreduce")
        try check(MPI_Allreduce(cmpi_in_place(), buffer.baseAddress, count, T.mpiDatatype, operation.handle, handle), "MPI_Allreduce")
    }

    /// Starts `allreduce` of `buffer` in place. The memory must stay valid and untouched until the
    /// request completes; every rank starts the same nonblocking collectives in the same order.
    public func allreduceAsync<T: MPIElement>(_ buffer: UnsafeMutableBufferPointer<T>, _ operation: ReductionOperation) throws(MPIError) -> Request {
        let count = try mpiCount(buffer.count, "MPI_Iallreduce")
        var request: MPI_Request? = nil
        try check(MPI_Iallreduce(cmpi_in_place(), buffer.baseAddress, count, T.mpiDatatype, operation.handle, handle, &request), "MPI_Iallreduce")
        return Request(request, keeping: nil)
    }

    /// Starts `broadcast` of root's `buffer` into every other rank's buffer of the same length, under
    /// the same rules as `allreduceAsync`.
    public func broadcastAsync<T: MPIElement>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws(MPIError) -> Request {
        let count = try mpiCount(buffer.count, "MPI_Ibcast")
        var request: MPI_Request? = nil
        try check(MPI_Ibcast(buffer.baseAddress, count, T.mpiDatatype, Int32(root), handle, &request), "MPI_Ibcast")
        return Request(request, keeping: nil)
    }

    public func allreduce<T: MPIElement>(_ array: inout [T], _ operation: ReductionOperation) throws(MPIError) {
        try array.withUnsafeMutableBufferPointer { (buffer) throws(MPIError) in try allreduce(buffer, operation) }
    }

    public func allreduce<T: MPIElement>(_ value: T, _ operation: ReductionOperation) throws(MPIError) -> T {
        var array = [value]
        try allreduce(&array, operation)
        return array[0]
    }

    /// Every rank's `values` (the same length on every rank), concatenated in rank order, on every rank.
    public func allgather<T: MPIElement>(_ values: [T]) throws(MPIError) -> [T] {
        let count = try mpiCount(values.count, "MPI_Allgather")
        var result = [T](unsafeUninitializedCapacity: values.count * size) { _, n in n = values.count * size }
        try values.withUnsafeBufferPointer { (send) throws(MPIError) in
            try result.withUnsafeMutableBufferPointer { (receive) throws(MPIError) in
                try check(MPI_Allgather(send.baseAddress, count, T.mpiDatatype, receive.baseAddress, count, T.mpiDatatype, handle), "MPI_Allgather")
            }
        }
        return result
    }

    /// Every rank's `values`, whose lengths may differ, as one array per rank, on every rank.
    public func allgatherv<T: MPIElement>(_ values: [T]) throws(MPIError) -> [[T]] {
        let counts = try allgather([Int32(try mpiCount(values.count, "MPI_Allgatherv"))])
        let (displacements, total) = try Communicator.displacements(counts, "MPI_Allgatherv")
        var flat = [T](unsafeUninitializedCapacity: total) { _, n in n = total }
        try values.withUnsafeBufferPointer { (send) throws(MPIError) in
            try flat.withUnsafeMutableBufferPointer { (receive) throws(MPIError) in
                try check(MPI_Allgatherv(send.baseAddress, Int32(values.count), T.mpiDatatype,
                                         receive.baseAddress, counts, displacements, T.mpiDatatype, handle), "MPI_Allgatherv")
            }
        }
        return Communicator.unflatten(flat, counts: counts, displacements: displacements)
    }

    /// Collective: every rank's host (`MPI_Get_processor_name`), by rank, on every rank: to name a rank
    /// and where it runs when it fails, and to check measured links against the hosts they were measured on.
    public func processorNames() throws(MPIError) -> [String] {
        try allgatherv(Array(MPIEnvironment.processorName.utf8)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Every rank's `values` (lengths may differ) on `root`, one array per rank; `nil` elsewhere.
    public func gatherv<T: MPIElement>(_ values: [T], root: Int) throws(MPIError) -> [[T]]? {
        let count = try mpiCount(values.count, "MPI_Gatherv")
        var counts = [Int32](repeating: 0, count: rank == root ? size : 0)
        try [count].withUnsafeBufferPointer { (send) throws(MPIError) in
            try counts.withUnsafeMutableBufferPointer { (receive) throws(MPIError) in
                try check(MPI_Gather(send.baseAddress, 1, Int32.mpiDatatype, receive.baseAddress, 1, Int32.mpiDatatype, Int32(root), handle), "MPI_Gather")
            }
        }
        let (displacements, total) = try Communicator.displacements(counts, "MPI_Gatherv")
        var flat = [T](unsafeUninitializedCapacity: total) { _, n in n = total }
        try values.withUnsafeBufferPointer { (send) throws(MPIError) in
            try flat.withUnsafeMutableBufferPointer { (receive) throws(MPIError) in
                try check(MPI_Gatherv(send.baseAddress, count, T.mpiDatatype,
                                      receive.baseAddress, counts, displacements, T.mpiDatatype, Int32(root), handle), "MPI_Gatherv")
            }
        }
        return rank == root ? Communicator.unflatten(flat, counts: counts, displacements: displacements) : nil
    }

    /// Sends `chunks[i]` from `root` to rank `i`; every rank returns its own chunk. Only root's `chunks` are read.
    public func scatterv<T: MPIElement>(_ chunks: [[T]], root: Int) throws(MPIError) -> [T] {
        if rank == root, chunks.count != size {
            throw MPIError(function: "MPI_Scatterv", message: "root has \(chunks.count) chunks for \(size) ranks", errorClass: .count)
        }
        var counts = rank == root ? try chunks.map { (chunk) throws(MPIError) in try mpiCount(chunk.count, "MPI_Scatterv") } : []
        var myCount: [Int32] = [0]
        try counts.withUnsafeMutableBufferPointer { (send) throws(MPIError) in
            try myCount.withUnsafeMutableBufferPointer { (receive) throws(MPIError) in
                try check(MPI_Scatter(send.baseAddress, 1, Int32.mpiDatatype, receive.baseAddress, 1, Int32.mpiDatatype, Int32(root), handle), "MPI_Scatter")
            }
        }
        let (displacements, _) = try Communicator.displacements(counts, "MPI_Scatterv")
        let flat = chunks.flatMap { $0 }
        let n = Int(myCount[0])
        var mine = [T](unsafeUninitializedCapacity: n) { _, count in count = n }
        try flat.withUnsafeBufferPointer { (send) throws(MPIError) in
            try mine.withUnsafeMutableBufferPointer { (receive) throws(MPIError) in
                try check(MPI_Scatterv(send.baseAddress, counts, displacements, T.mpiDatatype,
                                       receive.baseAddress, myCount[0], T.mpiDatatype, Int32(root), handle), "MPI_Scatterv")
            }
        }
        return mine
    }

    private static func displacements(_ counts: [Int32], _ function: String) throws(MPIError) -> ([Int32], Int) {
        var displacements = [Int32]()
        displacements.reserveCapacity(counts.count)
        var total = 0
        for count in counts {
            displacements.append(try mpiCount(total, function))
            total += Int(count)
        }
        _ = try mpiCount(total, function)
        return (displacements, total)
    }

    private static func unflatten<T>(_ flat: [T], counts: [Int32], displacements: [Int32]) -> [[T]] {
        zip(counts, displacements).map { count, start in Array(flat[Int(start)..<Int(start + count)]) }
    }
}
