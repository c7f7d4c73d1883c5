import CMPI

/// What a receive or probe reports about a message.
public struct MessageStatus: Sendable, Equatable {
    /// The rank that sent the message, in the communicator it arrived on.
    public let source: Int
    public let tag: Int
    /// The message size in bytes.
    public let byteCount: Int

    /// How many elements of `T` the message holds.
    public func count<T: MPIElement>(of _: T.Type) -> Int { byteCount / MemoryLayout<T>.stride }

    init(_ status: MPI_Status) throws(MPIError) {
        var status = status
        var bytes: Int32 = 0
        try check(MPI_Get_count(&status, cmpi_type_byte(), &bytes), "MPI_Get_count")
        source = Int(cmpi_status_source(&status))
        tag = Int(cmpi_status_tag(&status))
        byteCount = Int(bytes)
    }
}

/// A set of ranks that can talk to each other: the world, or a group made from world ranks.
///
/// The world communicator is borrowed from MPI; a sub-communicator is owned and is released
/// by `free()`, which every member calls once it is done with it (the federated mode builds
/// its block-design groups once and frees them at the end of training).
public final class Communicator: @unchecked Sendable {
    // @unchecked: an MPI_Comm is an immutable handle; MPI itself serialises its use under
    // the thread level requested at initialisation.
    let handle: MPI_Comm
    /// This process's rank in the communicator.
    public let rank: Int
    /// The number of ranks in the communicator.
    public let size: Int
    /// For each rank of this communicator, its rank in the world.
    public let worldRanks: [Int]
    private let owned: Bool
    private var freed = false

    init(borrowing handle: MPI_Comm) throws(MPIError) {
        self.handle = handle
        self.owned = false
        (rank, size, worldRanks) = try Communicator.describe(handle)
    }

    private init(owning handle: MPI_Comm) throws(MPIError) {
        MPI_Comm_set_errhandler(handle, cmpi_errors_return())
        self.handle = handle
        self.owned = true
        (rank, size, worldRanks) = try Communicator.describe(handle)
    }

    private static func describe(_ handle: MPI_Comm) throws(MPIError) -> (Int, Int, [Int]) {
        var rank: Int32 = 0
        var size: Int32 = 0
        try check(MPI_Comm_rank(handle, &rank), "MPI_Comm_rank")
        try check(MPI_Comm_size(handle, &size), "MPI_Comm_size")
        var group: MPI_Group? = nil
        var worldGroup: MPI_Group? = nil
        try check(MPI_Comm_group(handle, &group), "MPI_Comm_group")
        try check(MPI_Comm_group(cmpi_comm_world(), &worldGroup), "MPI_Comm_group")
        defer {
            MPI_Group_free(&group)
            MPI_Group_free(&worldGroup)
        }
        var local = (0..<size).map { Int32($0) }
        var world = [Int32](repeating: 0, count: Int(size))
        try check(MPI_Group_translate_ranks(group, size, &local, worldGroup, &world), "MPI_Group_translate_ranks")
        return (Int(rank), Int(size), world.map(Int.init))
    }

    /// Releases a sub-communicator. The world cannot be freed; calling twice is harmless.
    public func free() throws(MPIError) {
        guard owned, !freed, MPIEnvironment.isInitialized else { return }
        var handle: MPI_Comm? = self.handle
        try check(MPI_Comm_free(&handle), "MPI_Comm_free")
        freed = true
    }

    /// Blocks until every rank of the communicator has called it.
    public func barrier() throws(MPIError) {
        try check(MPI_Barrier(handle), "MPI_Barrier")
    }

    // MARK: Sub-communicators

    /// A communicator of exactly `ranks` (ranks of this communicator, in that order).
    ///
    /// Only the members call it (`MPI_Comm_create_group`), so disjoint groups can be built
    /// independently of each other. `tag` keeps concurrent creations apart.
    public func subcommunicator(ranks: [Int], tag: Int = 0) throws(MPIError) -> Communicator {
        guard Set(ranks).count == ranks.count, !ranks.isEmpty else {
            throw MPIError(function: "MPI_Comm_create_group", message: "ranks must be distinct and non-empty: \(ranks)", errorClass: .group)
        }
        if let bad = ranks.first(where: { $0 < 0 || $0 >= size }) {
            throw MPIError(function: "MPI_Comm_create_group", message: "rank \(bad) is not in a communicator of size \(size)", errorClass: .rank)
        }
        guard ranks.contains(rank) else {
            throw MPIError(function: "MPI_Comm_create_group", message: "rank \(rank) is not in the group \(ranks)", errorClass: .group)
        }
        var parentGroup: MPI_Group? = nil
        var group: MPI_Group? = nil
        try check(MPI_Comm_group(handle, &parentGroup), "MPI_Comm_group")
        defer { MPI_Group_free(&parentGroup) }
        var members = ranks.map { Int32($0) }
        try check(MPI_Group_incl(parentGroup, Int32(members.count), &members, &group), "MPI_Group_incl")
        defer { MPI_Group_free(&group) }
        var newComm: MPI_Comm? = nil
        try check(MPI_Comm_create_group(handle, group, Int32(tag), &newComm), "MPI_Comm_create_group")
        guard let newComm, newComm != cmpi_comm_null() else {
            throw MPIError(function: "MPI_Comm_create_group", message: "no communicator was created", errorClass: .communicator)
        }
        return try Communicator(owning: newComm)
    }

    /// Splits the communicator: ranks with the same `color` form one new communicator, ordered
    /// by `key`. A rank passing `nil` takes part in the call but joins none, and gets `nil`.
    public func split(color: Int?, key: Int) throws(MPIError) -> Communicator? {
        var newComm: MPI_Comm? = nil
        try check(MPI_Comm_split(handle, color.map { Int32($0) } ?? MPI_UNDEFINED, Int32(key), &newComm), "MPI_Comm_split")
        guard let newComm, newComm != cmpi_comm_null() else { return nil }
        return try Communicator(owning: newComm)
    }
}
