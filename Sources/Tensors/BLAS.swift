import COpenBLAS

/// The BLAS library every kernel runs on, as it describes itself.
public enum BLAS {
    /// OpenBLAS's build configuration, such as "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64".
    public static var configuration: String { String(cString: openblas_get_config()) }

    /// The CPU kernel family OpenBLAS chose at start-up (for example "Haswell").
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// Threads OpenBLAS uses per call. With several ranks per node this should be 1.
    public static var threadCount: Int { Int(openblas_get_num_threads()) }

    /// Sets the thread count. Ranks that share cores should use one thread each.
    public static func setThreadCount(_ count: Int) { openblas_set_num_threads(Int32(max(1, count))) }
}
