import Foundation
import Testing

@Suite struct AuditCLITests {
    func json(_ arguments: [String]) throws -> [String: Any] {
        let result = try fedbaechi(["audit", "--json"] + arguments)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    @Test func referenceScheduleLeaksAndShortRoundIsClean() throws {
        let flagged = try json(["--sites", "9", "--iterations", "7"])
        #expect(flagged["leak_free"] as? Bool == false)
        let leaks = try #require(flagged["leaks"] as? [[String: Any]])
        #expect(leaks.contains { ($0["observers"] as? [Int]) == [0] && $0["learns"] is Int })
        let clean = try json(["--sites", "9", "--iterations", "4"])
        #expect(clean["leak_free"] as? Bool == true)
        #expect((clean["leaks"] as? [Any])?.isEmpty == true)
    }

    @Test func maskedStatesTheLargestClearedCoalition() throws {
        let masked = try json(["--sites", "9", "--iterations", "4", "--masked"])
        #expect(masked["leak_free"] as? Bool == true)
        #expect(masked["largest_coalition_cleared"] as? Int == 3)
        let table = try fedbaechi(["audit", "--sites", "9", "--iterations", "4", "--masked"])
        #expect(table.stdout.contains("largest coalition cleared (masked): 3 sites"))
    }

    @Test func badArgumentsAreRejectedWithOneLine() throws {
        let cases: [([String], String)] = [
            (["--sites", "2", "--iterations", "1"], "--sites must be at least 3, got 2"),
            (["--sites", "9", "--iterations", "0"], "--iterations must be at least 1, got 0"),
            (["--sites", "9", "--iterations", "2", "--coalition", "9"], "--coalition must be smaller than --sites (9), got 9"),
            (["--sites", "9", "--iterations", "2", "--rho", "x"], "--rho and --rho-step must be decimals"),
        ]
        for (arguments, message) in cases {
            let result = try fedbaechi(["audit"] + arguments)
            #expect(result.status == 2, "\(arguments)")
            #expect(result.stderr.hasPrefix("fedbaechi: error: " + message), "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1)
        }
    }
}
