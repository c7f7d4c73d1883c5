import Testing
@testable import Placement

@Suite struct Fig1Tests {
    @Test func mETFOnTwoDevicesGivesEight() throws {
        let planner = Planner(graph: try fig1(), link: .baechi, options: .none)
        let plan = try planner.plan(.mETF, devices: devices(2)).get()
        #expect(plan.makespanMicros == 8)
        #expect(plan.deviceOfNode == [0, 0, 0, 0, 1, 1])
    }

    @Test func mSCTGivesEightToo() throws {
        let planner = Planner(graph: try fig1(), link: .baechi, options: .none)
        let plan = try planner.plan(.mSCT, devices: devices(2)).get()
        #expect(plan.makespanMicros == 8)
        #expect(plan.lpMakespanMicros.map { abs($0 - 8) < 1e-6 } == true)
    }

    @Test func mTOPOUniformGivesTwelve() throws {
        let planner = Planner(graph: try fig1(), link: .baechi, options: .none)
        let plan = try planner.plan(.mTOPO, devices: devices(2)).get()
        #expect(plan.makespanMicros == 12)
    }
}
