import Foundation
import Testing
@testable import Federated

@Suite struct KirkmanTests {
    @Test func everyKirkmanSizeThrough99PassesTheVerifier() {
        for v in stride(from: 3, through: 99, by: 6) {
            let start = Date()
            let design = KirkmanTripleSystems.make(sites: v)
            print("KTS(\(v)): \(design?.construction ?? "none") in \(Date().timeIntervalSince(start)) s")
            guard let design else { Issue.record("no KTS(\(v))"); continue }
            #expect(DesignVerifier.problems(in: design).isEmpty, "KTS(\(v))")
            #expect(design.classes.count == (v - 1) / 2)
            #expect(design.isKirkmanTripleSystem)
            #expect(DesignVerifier.coversEveryPair(design))
        }
    }
}
