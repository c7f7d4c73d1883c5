import Foundation
@testable import Tensors
import Testing

@Suite struct VectorExponentialTests {
    /// Against Double's `exp` rounded to Float, over every 1/4096 of [-87.3, 88] plus both ends: at most
    /// 2 units in the last place of the Float result.
    @Test func withinTwoUnitsInTheLastPlace() {
        var worst: Float = 0
        var worstAt: Float = 0
        var x: Float = -87.3
        while x <= 88 {
            let lanes = Lanes((0..<8).map { x + Float($0) / 4096 })
            let result = exponential(lanes)
            for lane in 0..<8 where lanes[lane] <= 88 {
                let exact = Float(Foundation.exp(Double(lanes[lane])))
                let ulps = abs(result[lane] - exact) / exact.ulp
                if ulps > worst { (worst, worstAt) = (ulps, lanes[lane]) }
            }
            x += 8.0 / 4096
        }
        #expect(worst <= 2, "\(worst) ulp at \(worstAt)")
    }

    @Test func edges() {
        let result = exponential(Lanes(0, 1, -1, -.infinity, .infinity, .nan, -200, 100))
        #expect(result[0] == 1)
        #expect(abs(result[1] - Float(M_E)) <= Float(M_E).ulp)
        #expect(abs(result[2] - Float(1 / M_E)) <= Float(1 / M_E).ulp)
        #expect(result[3] >= 0 && result[3] < 1e-37)   // e^-inf: the smallest normal's neighbourhood
        #expect(result[4] == Float(Foundation.exp(88.0)).nextDown || abs(result[4] - Float(Foundation.exp(88.0))) <= 2 * Float(Foundation.exp(88.0)).ulp)
        #expect(result[5].isNaN)
        #expect(result[6] < 1e-37 && result[6] >= 0)
        #expect(result[7].isFinite)
    }
}
