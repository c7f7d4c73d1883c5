import Basics
import Foundation
import Tensors

/// What a model-parallel rank says when memory runs out: before training, a rank whose operating
/// system limit (`ulimit -v`) cannot hold its plan refuses to start; during training, a rank the
/// system refuses an allocation (Swift then stops the process) says, from a signal handler, which
/// rank it was, its limit and what it held, before the launcher ends the job.
public enum RankMemoryGuard {
    /// What the handler reads: set once before training, and the executor's held bytes as they change.
    nonisolated(unsafe) static var heldBytes = 0
    nonisolated(unsafe) private static var prefix: UnsafeMutableBufferPointer<UInt8>?
    nonisolated(unsafe) private static var digits = UnsafeMutablePointer<UInt8>.allocate(capacity: 24)
    /// The handlers before ours, by signal number (a plain array: read from the handler).
    nonisolated(unsafe) private static var previous = UnsafeMutablePointer<sigaction>.allocate(capacity: 65)
    static let signals: [Int32] = [SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGTRAP]

    /// The address space OpenBLAS's work buffers take on a thread's first product (128 MiB and a page).
    public static let blasWorkBufferBytes = (128 << 20) + 4096

    /// A refusal when the address space this process may still map (its soft `RLIMIT_AS` less what is
    /// mapped now) is smaller than OpenBLAS's work buffers plus `limitBytes`: an allocation would fail
    /// mid-run (and OpenBLAS, refused its buffers, would retry forever). Call it before the first product.
    public static func checkAddressSpace(rank: Int, limitBytes: Int) throws {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_AS.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max,  // RLIM_INFINITY
              let mapped = ResidentMemory.mappedBytes else { return }
        let allowed = Int(clamping: limit.rlim_cur)
        guard allowed - mapped < limitBytes + blasWorkBufferBytes else { return }
        throw Refusal("cannot hold its share of the model: the address-space limit (ulimit -v) is \(Quantity.formatBytes(allowed)), "
                      + "\(Quantity.formatBytes(mapped)) of it mapped already (runtime, MPI), which leaves "
                      + "\(Quantity.formatBytes(max(0, allowed - mapped))) for OpenBLAS's \(Quantity.formatBytes(blasWorkBufferBytes)) "
                      + "of work buffers and the \(Quantity.formatBytes(limitBytes)) of --device-memory; raise the limit or lower "
                      + "--device-memory (with more ranks)", status: .noPlanFits)
    }

    /// Installs the handler of rank `rank`, whose plan allows it `limitBytes`.
    public static func install(rank: Int, limitBytes: Int) {
        let text = "\nfedbaechi: rank \(rank) (--device-memory \(Quantity.formatBytes(limitBytes)) per rank) stopped by signal "
        let bytes = Array(text.utf8)
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: bytes.count)
        _ = buffer.initialize(from: bytes)
        prefix = buffer
        for signal in signals {
            var action = sigaction()
            action.sa_flags = SA_SIGINFO | Int32(bitPattern: UInt32(truncatingIfNeeded: SA_RESETHAND))
            action.__sigaction_handler.sa_sigaction = { signal, info, context in
                RankMemoryGuard.report(signal)
                // Then whatever handled the signal before (the Swift runtime's backtrace), or the default.
                let earlier = RankMemoryGuard.previous[Int(signal)]
                if earlier.sa_flags & SA_SIGINFO != 0, let handler = earlier.__sigaction_handler.sa_sigaction {
                    handler(signal, info, context)
                } else {
                    Foundation.signal(signal, SIG_DFL)
                    raise(signal)
                }
            }
            var old = sigaction()
            if sigaction(signal, &action, &old) == 0 { previous[Int(signal)] = old }
        }
    }

    /// Writes the message with `write(2)` only: the process may be out of memory, in a signal handler.
    private static func report(_ signal: Int32) {
        guard let prefix else { return }
        _ = write(2, prefix.baseAddress, prefix.count)
        writeNumber(Int(signal))
        writeText(" holding ")
        writeNumber(heldBytes >> 20)
        writeText(" MiB of tensors; if the system refused memory, raise its limit or give the job more ranks\n")
    }

    private static func writeText(_ text: StaticString) {
        _ = write(2, text.utf8Start, text.utf8CodeUnitCount)
    }

    private static func writeNumber(_ value: Int) {
        var value = max(0, value)
        var count = 0
        repeat {
            digits[23 - count] = UInt8(48 + value % 10)
            value /= 10
            count += 1
        } while value > 0 && count < 24
        _ = write(2, digits + (24 - count), count)
    }
}
