// The Swift layer's ping-pong: the same protocol as Benchmarks/pingpong.c, through `Communicator`.
import MPI

let world = try MPIEnvironment.world()
let largest = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? (64 << 20) : 64 << 20
let sizes = [8, 1024, 4096, 16384, 65536, 262_144, 1 << 20, 4 << 20, 16 << 20, 64 << 20].filter { $0 <= largest }
let trials = 7
let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 64 << 20)
buffer.initialize(repeating: 1)
if world.rank == 0 { print("bytes,one_way_us,MB_per_s") }
for n in sizes {
    let reps = n <= 65536 ? 2000 : (n <= 1 << 20 ? 200 : 20)
    let message = UnsafeMutableBufferPointer(rebasing: buffer[0..<n])
    var samples: [Double] = []
    for trial in -1..<trials {
        try world.barrier()
        let start = MPIEnvironment.wallTime()
        for _ in 0..<reps {
            if world.rank == 0 {
                try world.send(UnsafeBufferPointer(message), to: 1)
                try world.receive(into: message, from: 1)
            } else if world.rank == 1 {
                try world.receive(into: message, from: 0)
                try world.send(UnsafeBufferPointer(message), to: 0)
            }
        }
        if trial >= 0 { samples.append((MPIEnvironment.wallTime() - start) / Double(2 * reps)) }
    }
    let median = samples.sorted()[trials / 2]
    if world.rank == 0 {
        print("\(n),\(String(format3: median * 1e6)),\(String(format1: Double(n) / median / 1e6))")
    }
}
buffer.deallocate()

extension String {
    init(format3 value: Double) { self = String(Double(Int((value * 1000).rounded())) / 1000) }
    init(format1 value: Double) { self = String(Double(Int((value * 10).rounded())) / 10) }
}
