import Foundation

/// The memory the operating system says this process holds (Linux's `/proc/self/status`): what a
/// rank really uses, beside what its plan predicts.
public enum ResidentMemory {
    /// The highest resident set size of the process so far (`VmHWM`), in bytes; nil where the system does not say.
    public static var peakBytes: Int? { statusField("VmHWM:") }
    /// The resident set size now (`VmRSS`), in bytes.
    public static var currentBytes: Int? { statusField("VmRSS:") }
    /// The address space mapped now (`VmSize`), resident or not: what `ulimit -v` limits.
    public static var mappedBytes: Int? { statusField("VmSize:") }

    /// What a model-parallel rank holds beyond its plan's tensors, measured on this machine's stack
    /// (Swift runtime and Foundation, Open MPI 4.1 with its shared-memory transport, OpenBLAS, and
    /// the allocator's slack over a run): a rank's measured peak stays within its `--device-memory`
    /// plus this (docs/benchmarks.md, "Memory per rank", says how it was measured).
    public static let fixedOverheadBytes = 96 << 20

    /// Makes the allocator give large blocks back to the system when they are freed: blocks of
    /// 128 KiB and more are mapped on their own and unmapped on free. glibc otherwise raises that
    /// threshold each time such a block is freed (up to 32 MiB) and keeps later ones in its heap, so
    /// a rank's resident memory would stay at its highest point rather than follow the tensors it holds.
    public static func returnLargeBlocksToTheSystem() {
        // glibc's mallopt is not in Swift's Glibc module: looked up by name (absent on other C libraries).
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD in glibc's malloc.h
        guard let process = dlopen(nil, RTLD_NOW), let symbol = dlsym(process, "mallopt") else { return }
        _ = unsafeBitCast(symbol, to: Mallopt.self)(mmapThreshold, 128 << 10)
    }

    private static func statusField(_ name: String) -> Int? {
        // procfs files report a size of 0: read to the end.
        guard let file = FileHandle(forReadingAtPath: "/proc/self/status") else { return nil }
        defer { try? file.close() }
        guard let data = try? file.readToEnd() else { return nil }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix(name) {
            // "VmHWM:\t   12345 kB"
            let fields = line.dropFirst(name.count).split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let value = fields.first.flatMap({ Int($0) }) else { return nil }
            return fields.count > 1 && fields[1].lowercased() == "kb" ? value * 1024 : value
        }
        return nil
    }
}
