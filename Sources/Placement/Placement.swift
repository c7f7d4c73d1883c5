// Placement: Baechi's algorithmic placement of training graphs on memory-limited devices.
//
// The pieces, in the order a placement goes through them:
//
// - `Graph` (Graph.swift): operators with compute time and memory, edges carrying tensors;
//   validated, with a topological order. `GraphImporters` reads it from fedbaechi's graph JSON or
//   a Baechi/TensorFlow profile (Importers/, the `GraphImporter` protocol for more formats).
// - `PlacementGraph` (Preprocessing/): co-placement groups, colocation, fusion into units.
// - `Placer` (Placers/): `MTopoPlacer`, `METFPlacer`, `MSCTPlacer` (its linear program in
//   `FavoriteChildLP`, solved with COIN-OR CLP), `SinglePlacer`, `ExpertPlacer`.
// - `Simulator`: Baechi's step-time simulator, `Simulator.replay` of a given `Schedule` (the order
//   m-ETF and m-SCT decided on, which is what their plans run in), and the memory of every device.
// - `Planner`: runs the above for an `Algorithm` (including `auto`) on `DeviceSpec`s under a
//   `LinkModel`, checks memory, and returns a `PlacementPlan` or a `PlanFailure`; with
//   `SearchOptions` it tries many tie-break orders (`TieBreak`), with and without co-placement,
//   and keeps the fastest plan (`PlacementSearch`).
// - `JudgedPlan`: a plan read from a file (an expert's, another tool's) simulated the same way.
// - `PlacementPlan.json()` and `GanttChart.svg(for:)`: the plan as JSON and as a picture.
