import Tensors

/// Every output's shape ([node][port]) from one real training step of `graph` on `feeds`: the truth
/// shape inference is checked against. The step updates the graph's parameters: use a throwaway graph.
public func executedShapes(_ graph: TrainingGraph, feeds: [String: Tensor]) -> [[[Int]]] {
    var values = graph.feedValues(feeds)
    graph.run(graph.executionOrder, values: &values, context: ExecutionContext(training: true, step: 0, seed: graph.seed))
    return graph.nodes.indices.map { node in
        (0..<graph.nodes[node].outputCount).map { values[ValueRef(node: node, port: $0)]?.shape ?? [] }
    }
}
