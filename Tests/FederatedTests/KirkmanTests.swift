import Testing
@testable import Federated

@Suite struct KirkmanTests {
    @Test func everyKirkmanSizeThrough99PassesTheVerifier() {
        for v in stride(from: 3, through: 99, by: 6) {
            let design = KirkmanTripleSystems.make(sites: v)
            guard let design else { Issue.record("no KTS(\(v))"); continue }
            #expect(DesignVerifier.problems(in: design).isEmpty, "KTS(\(v))")
            #expect(design.classes.count == (v - 1) / 2)
            #expect(design.isKirkmanTripleSystem)
            #expect(DesignVerifier.coversEveryPair(design))
        }
    }
}
