import Basics
import Foundation
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


extension BLAS {
    /// Time and work spent in sgemm since `resetStatistics`, to report the share of a step spent there.
    public struct Statistics: Sendable {
        public var calls = 0
        public var flops = 0.0
        public var seconds = 0.0
    }

    /// Counted only while `countingEnabled`; the training loop never turns it on.
    nonisolated(unsafe) public static var statistics = Statistics()
    nonisolated(unsafe) public static var countingEnabled = false

    public static func resetStatistics() { statistics = Statistics() }

    /// One tiny product, so that OpenBLAS maps its work buffers (up to 128 MiB of address space) now:
    /// OpenBLAS retries forever when the system refuses them, so a process maps them while it has room.
    public static func reserveWorkBuffers() {
        var a: [Float] = [1], b: [Float] = [1], c: [Float] = [0]
        a.withUnsafeMutableBufferPointer { a in
            b.withUnsafeMutableBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in sgemm(m: 1, n: 1, k: 1, a.baseAddress!, b.baseAddress!, c.baseAddress!) }
            }
        }
    }

    /// C = alpha * op(A) * op(B) + beta * C in row-major storage, where op(A) is m x k and op(B) is k x n.
    /// Leading dimensions are those of the stored (untransposed) matrices.
    @inline(__always)
    static func sgemm(transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
                      alpha: Float = 1, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                      beta: Float = 0, _ c: UnsafeMutablePointer<Float>,
                      lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil) {
        guard m > 0, n > 0 else { return }
        let start = countingEnabled ? DispatchTime.now().uptimeNanoseconds : 0
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda ?? (transposeA ? m : k)),
                    b, Int32(ldb ?? (transposeB ? k : n)),
                    beta, c, Int32(ldc ?? n))
        if countingEnabled {
            statistics.calls += 1
            statistics.flops += 2 * Double(m) * Double(n) * Double(k)
            statistics.seconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
    }

    /// Single-call sgemm speed at size n x n x n in GFLOP/s (median of `repeats` calls), the ceiling the
    /// engine's dense kernels are measured against.
    public static func measureSgemm(size n: Int, repeats: Int = 9) -> Double {
        let a = [Float](repeating: 0.5, count: n * n)
        let b = [Float](repeating: 0.25, count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        var times: [Double] = []
        for _ in 0..<(repeats + 1) {
            let start = DispatchTime.now().uptimeNanoseconds
            c.withUnsafeMutableBufferPointer { cp in
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1,
                            a, Int32(n), b, Int32(n), 0, cp.baseAddress, Int32(n))
            }
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        times.removeFirst()  // warm-up
        return 2 * Double(n * n * n) / median(times) / 1e9
    }
}
