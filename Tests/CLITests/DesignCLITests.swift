import Foundation
import TestSupport
import Testing

@Suite struct DesignCLITests {
    @Test func jsonForNineSitesIsAKirkmanSystem() throws {
        let result = try fedbaechi(["design", "--sites", "9", "--json"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(object?["sites"] as? Int == 9)
        let classes = try #require(object?["classes"] as? [[[Int]]])
        #expect(classes.count == 4)
        var pairs = Set<[Int]>()
        for parallelClass in classes {
            #expect(parallelClass.flatMap { $0 }.sorted() == Array(0..<9))
            for group in parallelClass { for a in group { for b in group where a < b { pairs.insert([a, b]) } } }
        }
        #expect(pairs.count == 36)
    }

    @Test func tableNamesTheDesignKind() throws {
        let kirkman = try fedbaechi(["design", "--sites", "15"])
        #expect(kirkman.status == 0)
        #expect(kirkman.stdout.contains("Kirkman triple system KTS(15): 7 classes"))
        let packing = try fedbaechi(["design", "--sites", "40"])
        #expect(packing.stdout.contains("resolvable packing on 40 sites: 18 classes (at most 18 possible)"))
    }

    @Test func tooFewSitesIsRejected() throws {
        let result = try fedbaechi(["design", "--sites", "2"])
        #expect(result.status == 2)
        #expect(result.stderr == "fedbaechi: error: --sites must be at least 3, got 2\n")
        let tooMany = try fedbaechi(["design", "--sites", "151"])
        #expect(tooMany.status == 2)
        #expect(tooMany.stderr.hasPrefix("fedbaechi: error: --sites must be at most 150"))
    }
}
