import Foundation
import TestSupport
import Testing

@Suite struct AuditCLITests {
    /// The JSON verdict and the exit status: 0 when training would run the schedule, 4 when it would not.
    func json(_ arguments: [String], status: Int32 = 0) throws -> [String: Any] {
        let result = try fedbaechi(["audit", "--json"] + arguments)
        #expect(result.status == status, "\(arguments): stderr: \(result.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    @Test func referenceScheduleLeaksAndShortRoundIsClean() throws {
        let flagged = try json(["--sites", "9", "--iterations", "7", "--plain"], status: 4)
        #expect(flagged["leak_free"] as? Bool == false && flagged["runs"] as? Bool == false)
        let leaks = try #require(flagged["leaks"] as? [[String: Any]])
        #expect(leaks.contains { ($0["observers"] as? [Int]) == [0] && $0["learns"] is Int })
        let clean = try json(["--sites", "9", "--iterations", "4"])
        #expect(clean["leak_free"] as? Bool == true && clean["runs"] as? Bool == true)
        #expect((clean["leaks"] as? [Any])?.isEmpty == true)
    }

    /// Without --iterations the audit chooses as training does: 3 plain iterations for 9 sites,
    /// masked ones for 10 (one class, which repeats), each within the error target.
    @Test func theScheduleTrainingWouldRunIsTheOneAudited() throws {
        let nine = try json(["--sites", "9"])
        #expect(nine["iterations"] as? Int == 3 && nine["mode"] as? String == "plain")
        let ten = try json(["--sites", "10"])
        #expect(ten["mode"] as? String == "masked" && (ten["masking_reason"] as? String)?.contains("plain group messages leak") == true)
        for output in [nine, ten] {
            let error = try #require(output["predicted_error"] as? Double)
            #expect(error <= 1e-6 && error > 0)
        }
        // Plain K = 7 leaks, so masking is switched on, as training would.
        let switched = try json(["--sites", "9", "--iterations", "7"])
        #expect(switched["mode"] as? String == "masked" && switched["leak_free"] as? Bool == true)
    }

    /// Exit 4 when training would refuse: one iteration leaves the error far above 1e-6; two colluders
    /// learn a model under masked K = 7; nine colluders learn the last site's model from the mean.
    @Test func refusedSchedulesExitWithFour() throws {
        let inexact = try json(["--sites", "9", "--iterations", "1"], status: 4)
        #expect(inexact["leak_free"] as? Bool == true)
        #expect((inexact["predicted_error"] as? Double ?? 0) > 1e-6)
        let pairs = try json(["--sites", "9", "--iterations", "7", "--masked", "--collusion", "2"], status: 4)
        #expect(pairs["leak_free"] as? Bool == false)
        let mean = try json(["--sites", "9", "--iterations", "1", "--masked", "--coalition", "8"], status: 4)
        #expect((mean["leaks"] as? [Any])?.count == 9)
        let table = try fedbaechi(["audit", "--sites", "9", "--iterations", "1"])
        #expect(table.status == 4)
        #expect(table.stdout.contains("verdict: training refuses this schedule (predicted error above the target)"))
    }

    @Test func maskedStatesTheLargestClearedCoalition() throws {
        let masked = try json(["--sites", "9", "--iterations", "4", "--masked"])
        #expect(masked["leak_free"] as? Bool == true)
        let cleared = try #require(masked["largest_coalition_cleared"] as? Int)
        let table = try fedbaechi(["audit", "--sites", "9", "--iterations", "4", "--masked"])
        #expect(table.stdout.contains("largest coalition cleared (masked): \(cleared) sites"))
        // The coalition one larger is flagged, and the one reported is cleared.
        _ = try json(["--sites", "9", "--iterations", "4", "--masked", "--collusion", "\(cleared)"])
        _ = try json(["--sites", "9", "--iterations", "4", "--masked", "--collusion", "\(cleared + 1)"], status: 4)
    }

    @Test func badArgumentsAreRejectedWithOneLine() throws {
        let cases: [([String], String)] = [
            (["--sites", "2", "--iterations", "1"], "--sites must be at least 3, got 2"),
            (["--sites", "9", "--iterations", "0"], "--iterations must be at least 1, got 0"),
            (["--sites", "9", "--iterations", "2", "--coalition", "9"], "--collusion must be between 1 and the number of sites less one (8), got 9"),
            (["--sites", "9", "--iterations", "2", "--rho", "x"], "--rho must be a positive decimal"),
            (["--sites", "9", "--masked", "--plain"], "--masked and --plain exclude each other"),
            (["--sites", "9", "--dual-range", "1000000"], "--dual-range 1000000.0 with rho 0.001 makes messages"),
        ]
        for (arguments, message) in cases {
            let result = try fedbaechi(["audit"] + arguments)
            #expect(result.status == 2, "\(arguments)")
            #expect(result.stderr.hasPrefix("fedbaechi: error: " + message), "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1)
        }
    }
}
