import Testing
@testable import Federated

@Suite struct PackingTests {
    @Test func everyOtherSizeThrough99PassesTheVerifierNearTheBound() {
        for v in 4...99 where v % 6 != 3 {
            guard let design = Designs.make(sites: v) else { Issue.record("no design for \(v)"); continue }
            let bound = ResolvableDesign.classBound(sites: v)
            #expect(DesignVerifier.problems(in: design).isEmpty, "V=\(v)")
            #expect(design.classes.count <= bound, "V=\(v)")
            #expect(design.classes.count >= 1)
            if v >= 30 { #expect(design.classes.count >= bound - 1, "V=\(v): \(design.classes.count) of \(bound)") }
        }
    }

    @Test func designsAreDeterministic() {
        #expect(Designs.make(sites: 40) == Designs.make(sites: 40))
        #expect(Designs.make(sites: 69) == Designs.make(sites: 69))
    }
}
