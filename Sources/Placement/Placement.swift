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
// - `Simulator`: Baechi's step-time simulator and the memory of every device over the step.
// - `Planner`: runs the above for an `Algorithm` (including `auto`) on `DeviceSpec`s under a
//   `LinkModel`, checks memory, and returns a `PlacementPlan` or a `PlanFailure`.
// - `PlacementPlan.json()` and `GanttChart.svg(for:)`: the plan as JSON and as a picture.
