import Foundation

/// The analytic time of an op on one device, a roofline:
///
///     compute_us = op_overhead_us + max(flops / flops_per_second, bytes / memory_bytes_per_second) * 1e6
///
/// An ONNX file carries no timings, and profiling the model on the login node where placement runs
/// would measure the wrong machine. A roofline needs three numbers per device and gets the order
/// of magnitude right: convolutions and matrix products are bound by FLOPs, element-wise ops,
/// pooling and copies by memory traffic, and tiny ops by the fixed cost of launching a kernel.
/// `fedbaechi calibrate` measures the three on the machine it runs on.
public struct CostModel: Sendable, Hashable, Codable {
    /// Sustained floating-point rate of large matrix products, FLOP/s (a multiply-add is 2).
    public var flopsPerSecond: Double
    /// Sustained memory bandwidth of a streaming element-wise op, bytes read plus written per second.
    public var memoryBytesPerSecond: Double
    /// Fixed cost of running any op (kernel launch, dispatch), microseconds.
    public var opOverheadMicros: Double

    /// A data-centre GPU of the Baechi paper's generation (the link defaults are Baechi's GPU fit
    /// too): 10 TFLOP/s sustained in fp32, 500 GB/s, 5 us per op.
    public static let `default` = CostModel(flopsPerSecond: 10e12, memoryBytesPerSecond: 500e9, opOverheadMicros: 5)

    public init(flopsPerSecond: Double, memoryBytesPerSecond: Double, opOverheadMicros: Double) {
        self.flopsPerSecond = flopsPerSecond
        self.memoryBytesPerSecond = memoryBytesPerSecond
        self.opOverheadMicros = opOverheadMicros
    }

    enum CodingKeys: String, CodingKey {
        case flopsPerSecond = "flops_per_second"
        case memoryBytesPerSecond = "memory_bytes_per_second"
        case opOverheadMicros = "op_overhead_us"
    }

    /// Time of an op doing `flops` FLOPs and moving `bytes` bytes.
    public func micros(flops: Double, bytes: Double) -> Double {
        opOverheadMicros + max(flops / flopsPerSecond, bytes / memoryBytesPerSecond) * 1e6
    }

    /// Why the rates are unusable, or nil.
    public var problem: String? {
        for (name, value) in [("flops_per_second", flopsPerSecond), ("memory_bytes_per_second", memoryBytesPerSecond)] {
            if !value.isFinite || value <= 0 { return "\(name) must be a positive number, not \(value)" }
        }
        if !opOverheadMicros.isFinite || opOverheadMicros < 0 || opOverheadMicros > 1e6 {
            return "op_overhead_us must be a number from 0 to 1e6, not \(opOverheadMicros)"
        }
        return nil
    }

    /// The `"cost_model"` object of a devices file or of `fedbaechi calibrate`'s output; nil when
    /// the document has none. Throws a one-line reason when it is there but wrong.
    public static func read(fromJSON data: Data) throws(CostModelError) -> CostModel? {
        // Decoded as Doubles by JSONDecoder, which takes `0` and `5e-6` alike and refuses `true`;
        // the document's other keys (a devices file's) are not looked at.
        struct Document: Decodable {
            var costModel: [String: Double]?
            enum CodingKeys: String, CodingKey { case costModel = "cost_model" }
        }
        let fields: [String: Double]
        do {
            guard let found = try JSONDecoder().decode(Document.self, from: data).costModel else { return nil }
            fields = found
        } catch let error as DecodingError {
            switch error {
            case .typeMismatch(_, let context) where context.codingPath.count >= 2,
                 .valueNotFound(_, let context) where context.codingPath.count >= 2:
                throw CostModelError(message: "cost_model.\(context.codingPath[1].stringValue) must be a number")
            case .typeMismatch(_, let context) where context.codingPath.count == 1:
                throw CostModelError(message: "\"cost_model\" must be an object")
            case .typeMismatch: throw CostModelError(message: "expected a JSON object")
            default: throw CostModelError(message: "not JSON")
            }
        } catch {
            throw CostModelError(message: "not JSON")
        }
        var model = CostModel.default
        for (key, number) in fields.sorted(by: { $0.key < $1.key }) {
            switch key {
            case CodingKeys.flopsPerSecond.rawValue: model.flopsPerSecond = number
            case CodingKeys.memoryBytesPerSecond.rawValue: model.memoryBytesPerSecond = number
            case CodingKeys.opOverheadMicros.rawValue: model.opOverheadMicros = number
            default: throw CostModelError(message: "cost_model has an unknown key \"\(key)\" (expected flops_per_second, memory_bytes_per_second, op_overhead_us)")
            }
        }
        if let problem = model.problem { throw CostModelError(message: "cost_model: " + problem) }
        return model
    }
}

public struct CostModelError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
