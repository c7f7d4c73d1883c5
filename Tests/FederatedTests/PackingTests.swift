import Foundation
import Testing
@testable import Federated

@Suite struct PackingTests {
    @Test func everyOtherSizeThrough99PassesTheVerifierWithinTheBound() {
        for v in 4...99 where v % 6 != 3 {
            let start = Date()
            guard let design = Designs.make(sites: v) else { Issue.record("no design for \(v)"); continue }
            let bound = ResolvableDesign.classBound(sites: v)
            print("V=\(v): \(design.classes.count)/\(bound) \(design.construction) in \(Date().timeIntervalSince(start)) s")
            #expect(DesignVerifier.problems(in: design).isEmpty, "V=\(v)")
            #expect(design.classes.count <= bound)
            #expect(design.classes.count >= 1)
        }
    }
}
