import Foundation
import Runtime

/// Prints a training driver's words: its lines on stdout, notes on stderr, and the progress of an epoch
/// as a redrawn bar when stderr is a terminal, otherwise about ten plain lines.
final class ConsoleReporter: TrainingReporter, @unchecked Sendable {
    // @unchecked: the lock guards the bar.
    private let lock = NSLock()
    private var bar: ProgressReporter?

    func say(_ line: String) { print(line) }

    func note(_ line: String) { FileHandle.standardError.write(Data("fedbaechi: \(line)\n".utf8)) }

    func progress(_ progress: StepProgress) {
        lock.lock()
        defer { lock.unlock() }
        if bar?.epoch != progress.epoch {
            bar = ProgressReporter(epoch: progress.epoch, examplesPerStep: progress.examplesPerStep, stepsAfterEpoch: progress.stepsAfterEpoch)
        }
        bar?.update(step: progress.step, of: progress.stepsInEpoch, loss: progress.loss)
    }
}

/// Progress of an epoch: a redrawn bar when stderr is a terminal, otherwise about ten plain lines; each
/// with the throughput so far and the time left (of the epoch, and of the run when more epochs follow).
struct ProgressReporter {
    let epoch: Int
    let examplesPerStep: Int
    /// Steps of the run after this epoch, for the time left of the whole run.
    let stepsAfterEpoch: Int
    let interactive = isatty(STDERR_FILENO) == 1
    private var lastDraw = Date.distantPast
    private var started: Date?
    private var firstStep = 0

    init(epoch: Int, examplesPerStep: Int, stepsAfterEpoch: Int = 0) {
        self.epoch = epoch
        self.examplesPerStep = examplesPerStep
        self.stepsAfterEpoch = stepsAfterEpoch
    }

    mutating func update(step: Int, of total: Int, loss: Float) {
        // Timed from the first step seen (a resumed epoch starts in the middle).
        guard let started else {
            started = Date()
            firstStep = step
            return show(step: step, of: total, loss: loss, speed: "")
        }
        let seconds = Date().timeIntervalSince(started)
        let stepsPerSecond = Double(step - firstStep) / max(seconds, 1e-9)
        var speed = String(format: ", %.0f examples/s", stepsPerSecond * Double(examplesPerStep))
        if step < total || stepsAfterEpoch > 0 {
            speed += ", " + describeDuration(Double(total - step) / stepsPerSecond) + " left in the epoch"
            if stepsAfterEpoch > 0 { speed += ", " + describeDuration(Double(total - step + stepsAfterEpoch) / stepsPerSecond) + " in the run" }
        }
        show(step: step, of: total, loss: loss, speed: speed)
    }

    private mutating func show(step: Int, of total: Int, loss: Float, speed: String) {
        if interactive {
            guard step == total || Date().timeIntervalSince(lastDraw) > 0.1 else { return }
            lastDraw = Date()
            let width = 30
            let filled = width * step / max(1, total)
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            let line = "\repoch \(epoch) [\(bar)] \(step)/\(total) loss \(String(format: "%.4f", loss))\(speed)\u{1B}[K"
            FileHandle.standardError.write(Data((line + (step == total ? "\n" : "")).utf8))
        } else if step == total || step % max(1, total / 10) == 0 {
            print("epoch \(epoch) step \(step)/\(total) loss \(String(format: "%.4f", loss))\(speed)")
        }
    }
}
