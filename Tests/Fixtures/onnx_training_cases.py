"""Models and data for the ONNX training tests, built with onnx.helper the way PyTorch's exporter
spells them, with onnxruntime's outputs as the truth.

    python3 onnx_training_cases.py OUT_DIR

writes, for every op case, OUT_DIR/ops/NAME.onnx and NAME.npz (x: the input, y: onnxruntime's
output); OUT_DIR/mlp.onnx, OUT_DIR/cnn.onnx (a residual CNN with batch normalization and the
Shape -> Gather -> Unsqueeze -> Concat -> Reshape flatten of `x.view(x.size(0), -1)`), their data
sets train.npz/test.npz (mlp) and images-train.npz/images-test.npz (cnn), and mlp-reference.npz:
three steps of plain SGD on the mlp computed with NumPy.

    python3 onnx_training_cases.py OUT_DIR wide

writes only OUT_DIR/wide.onnx (an MLP of 28 hidden layers of 1024, 111 MiB of weights inside the file),
the same model as wide-external.onnx with its weights in wide-external.data, and wide-train.npz /
wide-test.npz: a model file larger than one rank's memory.
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
rng = np.random.default_rng(5)


def initializer(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def model(nodes, inputs, outputs, initializers, opset=OPSET):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializers)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="fedbaechi-tests")
    m.ir_version = 8
    # Output shapes are left open (as exporters of dynamic axes often do): onnxruntime infers them.
    return m


def value(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def run(m, x):
    """onnxruntime's output; onnx's ReferenceEvaluator where onnxruntime lacks the case (batch-first
    recurrent layers; the evaluator ignores sequence_lens, so those cases leave it out)."""
    uses_layout = any(a.name == "layout" and a.i == 1 for node in m.graph.node for a in node.attribute)
    if uses_layout:
        from onnx.reference import ReferenceEvaluator
        return ReferenceEvaluator(m).run(None, {m.graph.input[0].name: x})[0]
    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {m.graph.input[0].name: x})[0]


def save_case(out, name, m, x):
    onnx.save(m, os.path.join(out, "ops", name + ".onnx"))
    np.savez(os.path.join(out, "ops", name + ".npz"), x=x, y=run(m, x).astype(np.float32))


def f32(*shape, low=-1.0, high=1.0):
    return rng.uniform(low, high, size=shape).astype(np.float32)


def op_cases(out):
    os.makedirs(os.path.join(out, "ops"), exist_ok=True)
    n = 3
    # Element-wise arithmetic with broadcasting: the fed input on the left, an initializer on the right.
    for op, shape, other in [("Add", [n, 3, 4], [4]), ("Sub", [n, 3, 4], [3, 1]), ("Mul", [n, 2, 3], [1, 3]),
                             ("Div", [n, 4], [4])]:
        right = f32(*other, low=0.5, high=2.0)
        m = model([helper.make_node(op, ["x", "w"], ["y"])], [value("x", ["N"] + shape[1:])], [value("y", None)],
                  [initializer("w", right)])
        save_case(out, op.lower(), m, f32(*shape))
    for op in ["Relu", "Sigmoid", "Tanh"]:
        m = model([helper.make_node(op, ["x"], ["y"])], [value("x", ["N", 5])], [value("y", None)], [])
        save_case(out, op.lower(), m, f32(n, 5, low=-3, high=3))
    for trans_a, trans_b in [(0, 0), (0, 1)]:
        w = f32(6, 4) if trans_b else f32(4, 6)
        m = model([helper.make_node("Gemm", ["x", "w", "b"], ["y"], transA=trans_a, transB=trans_b, alpha=0.5, beta=2.0)],
                  [value("x", ["N", 4])], [value("y", None)], [initializer("w", w), initializer("b", f32(6))])
        save_case(out, f"gemm-{trans_a}{trans_b}", m, f32(n, 4))
    m = model([helper.make_node("MatMul", ["x", "w"], ["y"])], [value("x", ["N", 3, 4])], [value("y", None)],
              [initializer("w", f32(4, 5))])
    save_case(out, "matmul-2d-weight", m, f32(n, 3, 4))
    m = model([helper.make_node("MatMul", ["x", "w"], ["y"])], [value("x", ["N", 2, 3, 4])], [value("y", None)],
              [initializer("w", f32(2, 4, 5))])
    save_case(out, "matmul-batched", m, f32(n, 2, 3, 4))
    for name, attributes, bias in [("conv", dict(pads=[1, 1, 1, 1]), True), ("conv-stride", dict(strides=[2, 2]), False),
                                   ("conv-same", dict(auto_pad="SAME_UPPER"), True)]:
        inputs = ["x", "w", "b"] if bias else ["x", "w"]
        inits = [initializer("w", f32(4, 2, 3, 3))] + ([initializer("b", f32(4))] if bias else [])
        m = model([helper.make_node("Conv", inputs, ["y"], kernel_shape=[3, 3], **attributes)], [value("x", ["N", 2, 6, 6])],
                  [value("y", None)], inits)
        save_case(out, name, m, f32(n, 2, 6, 6))
    m = model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
              [value("x", ["N", 2, 6, 6])], [value("y", None)], [])
    save_case(out, "maxpool", m, f32(n, 2, 6, 6))
    m = model([helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
              [value("x", ["N", 2, 6, 6])], [value("y", None)], [])
    save_case(out, "averagepool", m, f32(n, 2, 6, 6))
    m = model([helper.make_node("GlobalAveragePool", ["x"], ["y"])], [value("x", ["N", 3, 4, 4])], [value("y", None)], [])
    save_case(out, "globalaveragepool", m, f32(n, 3, 4, 4))
    m = model([helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)],
              [value("x", ["N", 3, 2, 2])], [value("y", None)],
              [initializer("s", f32(3)), initializer("b", f32(3)), initializer("m", f32(3)), initializer("v", f32(3, low=0.5, high=2))])
    save_case(out, "batchnormalization", m, f32(n, 3, 2, 2))
    m = model([helper.make_node("Flatten", ["x"], ["y"], axis=1)], [value("x", ["N", 2, 3, 2])], [value("y", None)], [])
    save_case(out, "flatten-1", m, f32(n, 2, 3, 2))
    # Flatten past the batch (rows of N*2), then back to a row per example by a constant target.
    m = model([helper.make_node("Flatten", ["x"], ["f"], axis=2), helper.make_node("Reshape", ["f", "shape"], ["y"])],
              [value("x", ["N", 2, 3, 2])], [value("y", None)], [initializer("shape", np.array([-1, 12], np.int64))])
    save_case(out, "flatten-2", m, f32(n, 2, 3, 2))
    # x.view(x.size(0), -1) as the TorchScript exporter writes it, with Constant's value_ints form.
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("zero", TensorProto.INT64, [], [0])),
             helper.make_node("Gather", ["s", "zero"], ["batch"], axis=0),
             helper.make_node("Constant", [], ["axes"], value_ints=[0]),
             helper.make_node("Unsqueeze", ["batch", "axes"], ["batch1"]),
             helper.make_node("Constant", [], ["minus1"], value_ints=[-1]),
             helper.make_node("Concat", ["batch1", "minus1"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["y"])]
    m = model(nodes, [value("x", ["N", 2, 3, 2])], [value("y", None)], [])
    save_case(out, "reshape-computed", m, f32(n, 2, 3, 2))
    # A sliced shape with a computed end, then Where/Equal on it (shapes from the dynamo exporter).
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Size", ["s"], ["rank"]),
             helper.make_node("Constant", [], ["one"], value_int=1),
             helper.make_node("Sub", ["rank", "one"], ["end"]),
             helper.make_node("Unsqueeze", ["end", "axes"], ["end1"]),
             helper.make_node("Constant", [], ["axes"], value_ints=[0]),
             helper.make_node("Constant", [], ["start"], value_ints=[0]),
             helper.make_node("Slice", ["s", "start", "end1"], ["lead"]),
             helper.make_node("Constant", [], ["minus1"], value_ints=[-1]),
             helper.make_node("Concat", ["lead", "minus1"], ["target0"], axis=0),
             helper.make_node("Equal", ["target0", "minus1"], ["is_free"]),
             helper.make_node("Where", ["is_free", "minus1", "target0"], ["target"]),
             helper.make_node("Reshape", ["x", "target"], ["y"])]
    nodes = [nodes[0], nodes[1], nodes[2], nodes[3], nodes[5], nodes[4]] + nodes[6:]
    m = model(nodes, [value("x", ["N", 2, 3, 2])], [value("y", None)], [])
    save_case(out, "reshape-sliced", m, f32(n, 2, 3, 2))
    # A Slice "to the end" as exporters write it (ends INT64_MAX), and Mod, on a shape.
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Slice", ["s", "one", "end"], ["rest"]),
             helper.make_node("Mod", ["rest", "big"], ["rest_mod"]),
             helper.make_node("Concat", ["minus1", "rest_mod"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["y"])]
    m = model(nodes, [value("x", ["N", 2, 3, 2])], [value("y", None)],
              [initializer("one", np.array([1], np.int64)), initializer("end", np.array([np.iinfo(np.int64).max], np.int64)),
               initializer("big", np.array([100], np.int64)), initializer("minus1", np.array([-1], np.int64))])
    save_case(out, "reshape-slice-to-end", m, f32(n, 2, 3, 2))
    m = model([helper.make_node("Gather", ["table", "x"], ["y"], axis=0)], [value("x", ["N", 4], TensorProto.INT64)],
              [value("y", None)], [initializer("table", f32(10, 3))])
    save_case(out, "gather-embedding", m, rng.integers(0, 10, size=(n, 4)).astype(np.int64))
    m = model([helper.make_node("Dropout", ["x"], ["y"], ratio=0.3)] if False else
              [helper.make_node("Constant", [], ["ratio"], value_float=0.3), helper.make_node("Dropout", ["x", "ratio"], ["y"])],
              [value("x", ["N", 5])], [value("y", None)], [])
    save_case(out, "dropout", m, f32(n, 5))


def transformer_cases(out):
    n = 3
    # q, k and v picked out of one packed projection, as nn.MultiheadAttention's export does.
    m = model([helper.make_node("Reshape", ["x", "packed"], ["p"]), helper.make_node("Gather", ["p", "index"], ["y"], axis=2)],
              [value("x", ["N", 4, 6])], [value("y", None)],
              [initializer("packed", np.array([0, 4, 3, 2], np.int64)), initializer("index", np.array(1, np.int64))])
    save_case(out, "gather-select", m, f32(n, 4, 6))
    # A computed tensor joined with another along the last axis.
    m = model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Concat", ["x", "r"], ["y"], axis=-1)],
              [value("x", ["N", 2, 3])], [value("y", None)], [])
    save_case(out, "concat", m, f32(n, 2, 3))
    m = model([helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"])], [value("x", ["N", 5, 4])], [value("y", None)],
              [initializer("starts", np.array([-1, 1], np.int64)), initializer("ends", np.array([-9223372036854775807, 4], np.int64)),
               initializer("axes", np.array([1, 2], np.int64)), initializer("steps", np.array([-2, 2], np.int64))])
    save_case(out, "slice", m, f32(n, 5, 4))
    m = model([helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 1, 3])], [value("x", ["N", 2, 3, 4])], [value("y", None)], [])
    save_case(out, "transpose", m, f32(n, 2, 3, 4))
    m = model([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], [value("x", ["N", 3, 5])], [value("y", None)], [])
    save_case(out, "softmax", m, f32(n, 3, 5, low=-3, high=3))
    # Before opset 13 Softmax sees its input as rows of everything from `axis` on (default axis 1).
    for name, attributes in [("softmax-opset11", {}), ("softmax-opset11-axis2", dict(axis=2))]:
        m = model([helper.make_node("Softmax", ["x"], ["y"], **attributes)], [value("x", ["N", 3, 4, 5])], [value("y", None)], [], opset=11)
        save_case(out, name, m, f32(n, 3, 4, 5, low=-3, high=3))
    m = model([helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"], axis=-1, epsilon=1e-5)], [value("x", ["N", 4, 6])],
              [value("y", None)], [initializer("s", f32(6)), initializer("b", f32(6))])
    save_case(out, "layernormalization", m, f32(n, 4, 6))
    m = model([helper.make_node("Gelu", ["x"], ["y"])], [value("x", ["N", 5])], [value("y", None)], [], opset=20)
    save_case(out, "gelu", m, f32(n, 5, low=-3, high=3))
    m = model([helper.make_node("Gelu", ["x"], ["y"], approximate="tanh")], [value("x", ["N", 5])], [value("y", None)], [], opset=20)
    save_case(out, "gelu-tanh", m, f32(n, 5, low=-3, high=3))
    m = model([helper.make_node("Erf", ["x"], ["y"])], [value("x", ["N", 5])], [value("y", None)], [])
    save_case(out, "erf", m, f32(n, 5, low=-2, high=2))
    m = model([helper.make_node("ReduceMean", ["x"], ["y"], axes=[1], keepdims=0)], [value("x", ["N", 4, 6])], [value("y", None)], [])
    save_case(out, "reducemean", m, f32(n, 4, 6))
    m = model([helper.make_node("Unsqueeze", ["x", "axes"], ["u"]), helper.make_node("Squeeze", ["u", "axes2"], ["y"])],
              [value("x", ["N", 4])], [value("y", None)],
              [initializer("axes", np.array([1, 3], np.int64)), initializer("axes2", np.array([3], np.int64))])
    save_case(out, "unsqueeze-squeeze", m, f32(n, 4))


def recurrent_cases(out):
    """GRU and LSTM with every optional input. Initial states are computed from the data (a
    projection of the mean input) and sequence lengths filled from the batch's size, as a model
    that trains at any batch size must make them; onnxruntime (or onnx's ReferenceEvaluator for
    batch-first layers, which onnxruntime lacks) is the truth."""
    n, steps, features, hidden = 3, 4, 3, 5
    configurations = [("gru", "GRU", 3, dict(), ["B"]), ("gru-lbr", "GRU", 3, dict(linear_before_reset=1), ["B", "", "h0"]),
                      ("gru-bidirectional", "GRU", 3, dict(direction="bidirectional", linear_before_reset=1), ["B", "lens"]),
                      ("gru-reverse-batch-first", "GRU", 3, dict(direction="reverse", layout=1), ["B", "", "h0"]),
                      ("lstm", "LSTM", 4, dict(), ["B"]),
                      ("lstm-full", "LSTM", 4, dict(direction="bidirectional"), ["B", "lens", "", "", "P"]),
                      ("lstm-states", "LSTM", 4, dict(direction="reverse"), ["B", "lens", "h0", "c0", "P"]),
                      ("lstm-batch-first", "LSTM", 4, dict(layout=1), ["B", "", "h0", "c0"])]
    for name, op, gates, attributes, optional in configurations:
        d = 2 if attributes.get("direction") == "bidirectional" else 1
        batch_first = attributes.get("layout", 0) == 1
        inits = [initializer("W", f32(d, gates * hidden, features, low=-0.5, high=0.5)),
                 initializer("R", f32(d, gates * hidden, hidden, low=-0.5, high=0.5)),
                 initializer("B", f32(d, 2 * gates * hidden, low=-0.3, high=0.3)), initializer("P", f32(d, 3 * hidden, low=-0.5, high=0.5)),
                 initializer("hw", f32(features, hidden)), initializer("cw", f32(features, hidden)),
                 initializer("state_axis", np.array([1 if batch_first else 0], np.int64)),
                 initializer("zero", np.array([0], np.int64))]
        nodes = [helper.make_node("ReduceMean", ["xb"], ["mean"], axes=[1], keepdims=0),
                 helper.make_node("MatMul", ["mean", "hw"], ["h_flat"]), helper.make_node("Unsqueeze", ["h_flat", "state_axis"], ["h0"]),
                 helper.make_node("MatMul", ["mean", "cw"], ["c_flat"]), helper.make_node("Unsqueeze", ["c_flat", "state_axis"], ["c0"]),
                 helper.make_node("Shape", ["xb"], ["shape"]), helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
                 helper.make_node("ConstantOfShape", ["batch"], ["lens"], value=helper.make_tensor("v", TensorProto.INT32, [1], [3]))]
        if batch_first:
            nodes.append(helper.make_node("Identity", ["xb"], ["x"]))
        else:
            nodes.append(helper.make_node("Transpose", ["xb"], ["x"], perm=[1, 0, 2]))
        outputs = ["y", "y_h"] + (["y_c"] if op == "LSTM" else [])
        nodes.append(helper.make_node(op, ["x", "W", "R"] + optional, outputs, hidden_size=hidden, **attributes))
        # Every hidden state, batch first.
        nodes.append(helper.make_node("Identity", ["y"], ["out"]) if batch_first else
                     helper.make_node("Transpose", ["y"], ["out"], perm=[2, 0, 1, 3]))
        used = set(optional) | {"W", "R"}
        inits = [i for i in inits if i.name in used or i.name in ("hw", "cw", "state_axis", "zero")]
        m = model(nodes, [value("xb", ["N", steps, features])], [value("out", None)], inits)
        save_case(out, name, m, f32(n, steps, features))
    # Y_h and Y_c alone (as a classifier reads the last states).
    nodes = [helper.make_node("Transpose", ["xb"], ["x"], perm=[1, 0, 2]),
             helper.make_node("LSTM", ["x", "W", "R", "B"], ["", "y_h", "y_c"], hidden_size=hidden),
             helper.make_node("Add", ["y_h", "y_c"], ["s"]), helper.make_node("Transpose", ["s"], ["out"], perm=[1, 0, 2])]
    m = model(nodes, [value("xb", ["N", steps, features])], [value("out", None)],
              [initializer("W", f32(1, 4 * hidden, features)), initializer("R", f32(1, 4 * hidden, hidden)), initializer("B", f32(1, 8 * hidden))])
    save_case(out, "lstm-last-states", m, f32(n, steps, features))


def gru_language_model(out):
    """An embedding + GRU + linear language model as PyTorch exports nn.GRU(batch_first=True) without
    an initial state: Transpose to time-major, a zero initial state from ConstantOfShape of the batch,
    linear_before_reset=1, Squeeze of the direction axis. Predicts the next token of sequences that
    count up modulo the vocabulary."""
    vocabulary, steps, width, hidden = 10, 6, 8, 16
    inits = [initializer("embed.weight", f32(vocabulary, width, low=-0.5, high=0.5)),
             initializer("W", f32(1, 3 * hidden, width, low=-0.3, high=0.3)), initializer("R", f32(1, 3 * hidden, hidden, low=-0.3, high=0.3)),
             initializer("B", np.zeros((1, 6 * hidden), np.float32)),
             initializer("out.weight", f32(hidden, vocabulary, low=-0.3, high=0.3)), initializer("out.bias", np.zeros(vocabulary, np.float32))]
    nodes = [helper.make_node("Gather", ["embed.weight", "tokens"], ["e"], name="/embed/Gather"),
             helper.make_node("Transpose", ["e"], ["e_t"], perm=[1, 0, 2], name="/rnn/Transpose"),
             helper.make_node("Shape", ["tokens"], ["s"]),
             helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("zero", TensorProto.INT64, [1], [0])),
             helper.make_node("Gather", ["s", "zero"], ["batch"], axis=0),
             helper.make_node("Constant", [], ["one"], value_ints=[1]),
             helper.make_node("Constant", [], ["units"], value_ints=[hidden]),
             helper.make_node("Concat", ["one", "batch", "units"], ["h_shape"], axis=0),
             helper.make_node("ConstantOfShape", ["h_shape"], ["h0"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0])),
             helper.make_node("GRU", ["e_t", "W", "R", "B", "", "h0"], ["y", "y_h"], hidden_size=hidden, linear_before_reset=1, name="/rnn/GRU"),
             helper.make_node("Squeeze", ["y", "axis1"], ["y_s"], name="/rnn/Squeeze"),
             helper.make_node("Transpose", ["y_s"], ["y_b"], perm=[1, 0, 2], name="/rnn/Transpose_1"),
             helper.make_node("MatMul", ["y_b", "out.weight"], ["mm"], name="/out/MatMul"),
             helper.make_node("Add", ["mm", "out.bias"], ["logits"], name="/out/Add")]
    inits.append(initializer("axis1", np.array([1], np.int64)))
    m = model(nodes, [value("tokens", ["batch", steps], TensorProto.INT64)], [value("logits", ["batch", steps, vocabulary])], inits)
    onnx.save(m, os.path.join(out, "gru-lm.onnx"))
    def data(count):
        start = rng.integers(0, vocabulary, size=(count, 1))
        sequence = (start + np.arange(steps + 1)) % vocabulary
        return sequence[:, :steps].astype(np.int64), sequence[:, 1:].astype(np.int64)
    for name, count in [("lm-train", 640), ("lm-test", 160)]:
        x, y = data(count)
        np.savez(os.path.join(out, name + ".npz"), x=x, y=y)
    x = np.load(os.path.join(out, "lm-test.npz"))["x"]
    np.savez(os.path.join(out, "gru-lm-logits.npz"), x=x, y=run(m, x).astype(np.float32))


def transformer(out):
    """A one-layer transformer encoder classifier, as a hand-written PyTorch module exports it
    (TorchScript exporter, opset 17): token and learned positional embeddings, multi-head attention as
    MatMul/Reshape/Transpose/Softmax, LayerNormalization, an exact GELU spelled with Erf, a mean over
    the sequence. Sequences of 8 tokens of a vocabulary of 12; class 1 when token 3 occurs."""
    vocabulary, steps, width, heads, hidden, classes = 12, 8, 16, 2, 32, 2
    head = width // heads
    def w(*shape, scale=0.3):
        return f32(*shape, low=-scale, high=scale)
    inits = [initializer("tok.weight", w(vocabulary, width)), initializer("pos.weight", w(steps, width)),
             initializer("positions", np.arange(steps, dtype=np.int64)),
             initializer("q.weight", w(width, width)), initializer("q.bias", np.zeros(width, np.float32)),
             initializer("k.weight", w(width, width)), initializer("k.bias", np.zeros(width, np.float32)),
             initializer("v.weight", w(width, width)), initializer("v.bias", np.zeros(width, np.float32)),
             initializer("o.weight", w(width, width)), initializer("o.bias", np.zeros(width, np.float32)),
             initializer("ln1.weight", np.ones(width, np.float32)), initializer("ln1.bias", np.zeros(width, np.float32)),
             initializer("ff1.weight", w(width, hidden)), initializer("ff1.bias", np.zeros(hidden, np.float32)),
             initializer("ff2.weight", w(hidden, width)), initializer("ff2.bias", np.zeros(width, np.float32)),
             initializer("ln2.weight", np.ones(width, np.float32)), initializer("ln2.bias", np.zeros(width, np.float32)),
             initializer("head.weight", w(classes, width)), initializer("head.bias", np.zeros(classes, np.float32)),
             initializer("heads_shape", np.array([0, steps, heads, head], np.int64)),
             initializer("merged_shape", np.array([0, steps, width], np.int64)),
             initializer("scale", np.array(np.sqrt(head), np.float32)),
             initializer("sqrt2", np.array(np.sqrt(2.0), np.float32)), initializer("one", np.array(1.0, np.float32)),
             initializer("half", np.array(0.5, np.float32))]
    nodes = [helper.make_node("Gather", ["tok.weight", "tokens"], ["t"], name="/tok/Gather"),
             helper.make_node("Gather", ["pos.weight", "positions"], ["p"], name="/pos/Gather"),
             helper.make_node("Add", ["t", "p"], ["e"], name="/Add")]
    def linear(x, name, y):
        nodes.append(helper.make_node("MatMul", [x, name + ".weight"], [y + "_mm"], name=f"/{name}/MatMul"))
        nodes.append(helper.make_node("Add", [y + "_mm", name + ".bias"], [y], name=f"/{name}/Add"))
    for name in "qkv":
        linear("e", name, name)
        nodes.append(helper.make_node("Reshape", [name, "heads_shape"], [name + "_h"], name=f"/{name}/Reshape"))
        nodes.append(helper.make_node("Transpose", [name + "_h"], [name + "_t"], perm=[0, 2, 1, 3], name=f"/{name}/Transpose"))
    nodes += [helper.make_node("Transpose", ["k_t"], ["k_tt"], perm=[0, 1, 3, 2], name="/kT/Transpose"),
              helper.make_node("MatMul", ["q_t", "k_tt"], ["scores"], name="/scores/MatMul"),
              helper.make_node("Div", ["scores", "scale"], ["scaled"], name="/Div"),
              helper.make_node("Softmax", ["scaled"], ["attn"], axis=-1, name="/Softmax"),
              helper.make_node("MatMul", ["attn", "v_t"], ["ctx"], name="/ctx/MatMul"),
              helper.make_node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3], name="/ctx/Transpose"),
              helper.make_node("Reshape", ["ctx_t", "merged_shape"], ["merged"], name="/ctx/Reshape")]
    linear("merged", "o", "attended")
    nodes += [helper.make_node("Add", ["e", "attended"], ["r1"], name="/res1/Add"),
              helper.make_node("LayerNormalization", ["r1", "ln1.weight", "ln1.bias"], ["n1"], axis=-1, epsilon=1e-5, name="/ln1/LayerNormalization")]
    linear("n1", "ff1", "f1")
    nodes += [helper.make_node("Div", ["f1", "sqrt2"], ["g0"], name="/gelu/Div"), helper.make_node("Erf", ["g0"], ["g1"], name="/gelu/Erf"),
              helper.make_node("Add", ["g1", "one"], ["g2"], name="/gelu/Add"), helper.make_node("Mul", ["f1", "g2"], ["g3"], name="/gelu/Mul"),
              helper.make_node("Mul", ["g3", "half"], ["g"], name="/gelu/Mul_1")]
    linear("g", "ff2", "f2")
    nodes += [helper.make_node("Add", ["n1", "f2"], ["r2"], name="/res2/Add"),
              helper.make_node("LayerNormalization", ["r2", "ln2.weight", "ln2.bias"], ["n2"], axis=-1, epsilon=1e-5, name="/ln2/LayerNormalization"),
              helper.make_node("ReduceMean", ["n2"], ["pooled"], axes=[1], keepdims=0, name="/ReduceMean"),
              helper.make_node("Gemm", ["pooled", "head.weight", "head.bias"], ["logits"], transB=1, name="/head/Gemm")]
    m = model(nodes, [value("tokens", ["batch", steps], TensorProto.INT64)], [value("logits", ["batch", classes])], inits)
    onnx.save(m, os.path.join(out, "transformer.onnx"))
    def data(count):
        x = rng.integers(0, vocabulary, size=(count, steps))
        y = (x == 3).any(1).astype(np.int64)
        return x.astype(np.int64), y
    for name, count in [("tokens-train", 800), ("tokens-test", 200)]:
        x, y = data(count)
        np.savez(os.path.join(out, name + ".npz"), x=x, y=y)
    # onnxruntime's logits on the test tokens, before training: the whole model's forward.
    x = np.load(os.path.join(out, "tokens-test.npz"))["x"]
    np.savez(os.path.join(out, "transformer-logits.npz"), x=x, y=run(m, x).astype(np.float32))


def mlp(out):
    w1, b1, w2, b2 = f32(16, 20, low=-0.4, high=0.4), f32(16, low=-0.1, high=0.1), f32(4, 16, low=-0.4, high=0.4), f32(4, low=-0.1, high=0.1)
    nodes = [helper.make_node("Gemm", ["input", "fc1.weight", "fc1.bias"], ["h"], transB=1, name="/fc1/Gemm"),
             helper.make_node("Relu", ["h"], ["r"], name="/relu/Relu"),
             helper.make_node("Gemm", ["r", "fc2.weight", "fc2.bias"], ["logits"], transB=1, name="/fc2/Gemm")]
    m = model(nodes, [value("input", ["batch", 20])], [value("logits", ["batch", 4])],
              [initializer("fc1.weight", w1), initializer("fc1.bias", b1), initializer("fc2.weight", w2), initializer("fc2.bias", b2)])
    onnx.save(m, os.path.join(out, "mlp.onnx"))
    # Four classes: the sign pattern of two projections of the features.
    def data(count):
        x = f32(count, 20)
        y = ((x[:, :10].sum(1) > 0).astype(np.int64) * 2 + (x[:, 10:].sum(1) > 0).astype(np.int64))
        return x, y
    for name, count in [("train", 512), ("test", 128)]:
        x, y = data(count)
        np.savez(os.path.join(out, name + ".npz"), x=x, y=y)
    # Three steps of plain SGD (lr 0.1) on the first three batches of 8, in file order.
    x, y = np.load(os.path.join(out, "train.npz"))["x"], np.load(os.path.join(out, "train.npz"))["y"]
    lr = 0.1
    p = dict(w1=w1.astype(np.float64), b1=b1.astype(np.float64), w2=w2.astype(np.float64), b2=b2.astype(np.float64))
    losses = []
    for step in range(3):
        xb, yb = x[step * 8:(step + 1) * 8].astype(np.float64), y[step * 8:(step + 1) * 8]
        h = xb @ p["w1"].T + p["b1"]
        r = np.maximum(h, 0)
        z = r @ p["w2"].T + p["b2"]
        e = np.exp(z - z.max(1, keepdims=True))
        prob = e / e.sum(1, keepdims=True)
        losses.append(-np.log(prob[np.arange(8), yb]).mean())
        dz = prob.copy()
        dz[np.arange(8), yb] -= 1
        dz /= 8
        grads = dict(w2=dz.T @ r, b2=dz.sum(0))
        dr = dz @ p["w2"]
        dh = dr * (h > 0)
        grads.update(w1=dh.T @ xb, b1=dh.sum(0))
        for k in p:
            p[k] -= lr * grads[k]
    np.savez(os.path.join(out, "mlp-reference.npz"), losses=np.array(losses, dtype=np.float64),
             **{k: v.astype(np.float32) for k, v in p.items()})


def shared(out):
    """A bias shared by two layers through Identity, as PyTorch's exporter deduplicates equal
    initializers: one parameter, trained by both."""
    nodes = [helper.make_node("Gemm", ["input", "w1", "b"], ["h1"], transB=1), helper.make_node("Relu", ["h1"], ["r1"]),
             helper.make_node("Identity", ["b"], ["b_again"]),
             helper.make_node("Gemm", ["r1", "w2", "b_again"], ["h2"], transB=1), helper.make_node("Relu", ["h2"], ["r2"]),
             helper.make_node("Gemm", ["r2", "w3", "b3"], ["logits"], transB=1)]
    m = model(nodes, [value("input", ["batch", 20])], [value("logits", ["batch", 4])],
              [initializer("w1", f32(8, 20, low=-0.4, high=0.4)), initializer("b", np.full(8, 0.1, np.float32)),
               initializer("w2", f32(8, 8, low=-0.4, high=0.4)), initializer("w3", f32(4, 8, low=-0.4, high=0.4)),
               initializer("b3", np.zeros(4, np.float32))])
    onnx.save(m, os.path.join(out, "shared.onnx"))


def cnn(out):
    c = 4
    inits = [initializer("conv1.weight", f32(c, 1, 3, 3, low=-0.5, high=0.5)), initializer("conv1.bias", f32(c, low=-0.1, high=0.1)),
             initializer("bn1.weight", np.ones(c, np.float32)), initializer("bn1.bias", np.zeros(c, np.float32)),
             initializer("bn1.running_mean", np.zeros(c, np.float32)), initializer("bn1.running_var", np.ones(c, np.float32)),
             initializer("conv2.weight", f32(c, c, 3, 3, low=-0.3, high=0.3)),
             initializer("bn2.weight", np.ones(c, np.float32)), initializer("bn2.bias", np.zeros(c, np.float32)),
             initializer("bn2.running_mean", np.zeros(c, np.float32)), initializer("bn2.running_var", np.ones(c, np.float32)),
             initializer("fc.weight", f32(3, c * 4 * 4, low=-0.2, high=0.2)), initializer("fc.bias", np.zeros(3, np.float32))]
    # As exported with training=TrainingMode.TRAINING: batch normalization with training_mode=1 and
    # its running statistics as extra outputs.
    nodes = [helper.make_node("Conv", ["input", "conv1.weight", "conv1.bias"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="/conv1/Conv"),
             helper.make_node("BatchNormalization", ["c1", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"],
                              ["b1", "bn1_mean_out", "bn1_var_out"], epsilon=1e-5, momentum=0.9, training_mode=1, name="/bn1/BatchNormalization"),
             helper.make_node("Relu", ["b1"], ["r1"], name="/relu1/Relu"),
             helper.make_node("Conv", ["r1", "conv2.weight"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="/conv2/Conv"),
             helper.make_node("BatchNormalization", ["c2", "bn2.weight", "bn2.bias", "bn2.running_mean", "bn2.running_var"],
                              ["b2", "bn2_mean_out", "bn2_var_out"], epsilon=1e-5, momentum=0.9, training_mode=1, name="/bn2/BatchNormalization"),
             helper.make_node("Add", ["b2", "r1"], ["res"], name="/Add"),
             helper.make_node("Relu", ["res"], ["r2"], name="/relu2/Relu"),
             helper.make_node("MaxPool", ["r2"], ["pool"], kernel_shape=[2, 2], strides=[2, 2], name="/pool/MaxPool"),
             helper.make_node("Shape", ["pool"], ["s"]),
             helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("zero", TensorProto.INT64, [], [0])),
             helper.make_node("Gather", ["s", "zero"], ["batch"], axis=0),
             helper.make_node("Constant", [], ["axes"], value_ints=[0]),
             helper.make_node("Unsqueeze", ["batch", "axes"], ["batch1"]),
             helper.make_node("Constant", [], ["minus1"], value_ints=[-1]),
             helper.make_node("Concat", ["batch1", "minus1"], ["target"], axis=0),
             helper.make_node("Reshape", ["pool", "target"], ["flat"], name="/Reshape"),
             helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], transB=1, name="/fc/Gemm")]
    m = model(nodes, [value("input", ["batch", 1, 8, 8])], [value("logits", ["batch", 3])], inits, opset=15)
    onnx.save(m, os.path.join(out, "cnn.onnx"))
    # Three classes of 8x8 images: a bright top half, a bright left half, or neither; uint8 pixels.
    def data(count):
        labels = rng.integers(0, 3, size=count)
        images = rng.integers(0, 90, size=(count, 1, 8, 8))
        images[labels == 0, :, :4, :] += 120
        images[labels == 1, :, :, :4] += 120
        return images.astype(np.uint8), labels.astype(np.int64)
    for name, count in [("images-train", 600), ("images-test", 150)]:
        x, y = data(count)
        np.savez_compressed(os.path.join(out, name + ".npz"), x=x, y=y)


def fashion_cnn(out):
    """The zoo's lenet at widths 8, 16 and 64, as PyTorch would export it (PyTorch's default
    initialisation, bound 1/sqrt(fan-in)), for training on Fashion-MNIST beside the zoo's own."""
    def layer(name, *shape):
        fan_in = int(np.prod(shape[1:]))
        bound = 1 / np.sqrt(fan_in)
        return [initializer(name + ".weight", rng.uniform(-bound, bound, size=shape).astype(np.float32)),
                initializer(name + ".bias", rng.uniform(-bound, bound, size=shape[0]).astype(np.float32))]
    inits = layer("conv1", 8, 1, 5, 5) + layer("conv2", 16, 8, 5, 5) + layer("fc1", 64, 784) + layer("fc2", 10, 64)
    nodes = [helper.make_node("Conv", ["images", "conv1.weight", "conv1.bias"], ["c1"], kernel_shape=[5, 5], pads=[2, 2, 2, 2]),
             helper.make_node("Relu", ["c1"], ["r1"]), helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "conv2.weight", "conv2.bias"], ["c2"], kernel_shape=[5, 5], pads=[2, 2, 2, 2]),
             helper.make_node("Relu", ["c2"], ["r2"]), helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p2"], ["flat"], axis=1),
             helper.make_node("Gemm", ["flat", "fc1.weight", "fc1.bias"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r3"]),
             helper.make_node("Gemm", ["r3", "fc2.weight", "fc2.bias"], ["logits"], transB=1)]
    m = model(nodes, [value("images", ["batch", 1, 28, 28])], [value("logits", ["batch", 10])], inits)
    onnx.save(m, os.path.join(out, "fashion-cnn.onnx"))


def wide(out, layers=28, width=1024):
    """Gemm + Relu layers as PyTorch exports nn.Linear, He-uniform weights (the logits depend on the data)."""
    nodes, inits, x, fan_in = [], [], "input", 784
    for i in range(layers + 1):
        fan_out = 10 if i == layers else width
        inits += [initializer(f"fc{i}.weight", f32(fan_out, fan_in, low=-np.sqrt(6 / fan_in), high=np.sqrt(6 / fan_in))), initializer(f"fc{i}.bias", np.zeros(fan_out, np.float32))]
        nodes.append(helper.make_node("Gemm", [x, f"fc{i}.weight", f"fc{i}.bias"], [f"h{i}" if i < layers else "logits"], transB=1, name=f"/fc{i}/Gemm"))
        if i < layers:
            nodes.append(helper.make_node("Relu", [f"h{i}"], [f"r{i}"], name=f"/relu{i}/Relu"))
            x = f"r{i}"
        fan_in = fan_out
    m = model(nodes, [value("input", ["batch", 784])], [value("logits", ["batch", 10])], inits)
    onnx.save(m, os.path.join(out, "wide.onnx"))
    onnx.save(m, os.path.join(out, "wide-external.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="wide-external.data", size_threshold=1024)
    for name, count in [("wide-train", 64), ("wide-test", 32)]:
        np.savez(os.path.join(out, name + ".npz"), x=f32(count, 784), y=rng.integers(0, 10, count).astype(np.int64))


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    if sys.argv[2:] == ["wide"]:
        wide(out)
        print("ok")
        sys.exit(0)
    op_cases(out)
    transformer_cases(out)
    recurrent_cases(out)
    transformer(out)
    gru_language_model(out)
    mlp(out)
    cnn(out)
    shared(out)
    fashion_cnn(out)
    print("ok")
