"""ONNX models for Benchmarks/onnx-route.sh, written as PyTorch's TorchScript exporter spells them:

  lenet.onnx        the zoo's lenet exactly (conv 5x5 32, pool, conv 5x5 64, pool, dense 512, dense 10),
                    so the ONNX route is timed beside the same network built in the zoo;
  resnet.onnx       a ResNet-style CNN on 28x28 images: a stem, two residual blocks of
                    Conv-BatchNorm-ReLU (16 and 32 channels, the second strided with a 1x1 projection),
                    global average pooling, a classifier;
  transformer.onnx  a two-layer transformer encoder over 32 tokens (width 64, 4 heads, feed-forward 128,
                    learned positions, GELU by Erf, mean pooling, 10 classes).

    python3 onnx_route_models.py OUT_DIR
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(7)
nodes, inits = [], []


def w(name, *shape, scale=0.1):
    inits.append(numpy_helper.from_array(rng.uniform(-scale, scale, size=shape).astype(np.float32), name))
    return name


def const(name, array):
    inits.append(numpy_helper.from_array(np.asarray(array), name))
    return name


def node(op, inputs, output, **attributes):
    nodes.append(helper.make_node(op, inputs, [output], name=f"/{output}/{op}", **attributes))
    return output


def save(path, input_name, input_shape, elem=TensorProto.FLOAT):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(input_name, elem, input_shape)],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)
    nodes.clear()
    inits.clear()


def flatten_like_torch(x, out):
    node("Shape", [x], out + "_shape")
    node("Gather", [out + "_shape", const(out + "_zero", np.array(0, np.int64))], out + "_batch", axis=0)
    node("Unsqueeze", [out + "_batch", const(out + "_axes", np.array([0], np.int64))], out + "_batch1")
    node("Concat", [out + "_batch1", const(out + "_rest", np.array([-1], np.int64))], out + "_target", axis=0)
    return node("Reshape", [x, out + "_target"], out)


def lenet(path):
    x = node("Conv", ["images", w("conv1.weight", 32, 1, 5, 5), w("conv1.bias", 32)], "c1", kernel_shape=[5, 5], pads=[2, 2, 2, 2])
    x = node("MaxPool", [node("Relu", [x], "r1")], "p1", kernel_shape=[2, 2], strides=[2, 2])
    x = node("Conv", [x, w("conv2.weight", 64, 32, 5, 5), w("conv2.bias", 64)], "c2", kernel_shape=[5, 5], pads=[2, 2, 2, 2])
    x = node("MaxPool", [node("Relu", [x], "r2")], "p2", kernel_shape=[2, 2], strides=[2, 2])
    x = flatten_like_torch(x, "flat")
    x = node("Relu", [node("Gemm", [x, w("fc1.weight", 512, 3136), w("fc1.bias", 512)], "fc1", transB=1)], "r3")
    node("Gemm", [x, w("out.weight", 10, 512), w("out.bias", 10)], "logits", transB=1)
    save(path, "images", ["batch", 1, 28, 28])


def resnet(path):
    def conv_bn(x, name, cin, cout, k, stride=1, relu=True):
        c = node("Conv", [x, w(name + ".weight", cout, cin, k, k, scale=0.2)], name, kernel_shape=[k, k],
                 pads=[k // 2] * 4, strides=[stride, stride])
        b = node("BatchNormalization", [c, const(name + ".bn.weight", np.ones(cout, np.float32)),
                                        const(name + ".bn.bias", np.zeros(cout, np.float32)),
                                        const(name + ".bn.running_mean", np.zeros(cout, np.float32)),
                                        const(name + ".bn.running_var", np.ones(cout, np.float32))], name + "_bn", epsilon=1e-5, momentum=0.9)
        return node("Relu", [b], name + "_relu") if relu else b
    x = conv_bn("images", "stem", 1, 16, 3)
    # Block 1: 16 channels, identity shortcut.
    y = conv_bn(conv_bn(x, "b1c1", 16, 16, 3), "b1c2", 16, 16, 3, relu=False)
    x = node("Relu", [node("Add", [y, x], "b1_add")], "b1_out")
    # Block 2: 32 channels at stride 2, a 1x1 projection on the shortcut.
    y = conv_bn(conv_bn(x, "b2c1", 16, 32, 3, stride=2), "b2c2", 32, 32, 3, relu=False)
    s = conv_bn(x, "b2proj", 16, 32, 1, stride=2, relu=False)
    x = node("Relu", [node("Add", [y, s], "b2_add")], "b2_out")
    x = flatten_like_torch(node("GlobalAveragePool", [x], "gap"), "flat")
    node("Gemm", [x, w("fc.weight", 10, 32), w("fc.bias", 10)], "logits", transB=1)
    save(path, "images", ["batch", 1, 28, 28])


def transformer(path, vocabulary=1000, steps=32, width=64, heads=4, hidden=128, layers=2):
    head = width // heads
    x = node("Add", [node("Gather", [w("tok.weight", vocabulary, width), "tokens"], "tok"),
                     node("Gather", [w("pos.weight", steps, width), const("positions", np.arange(steps, dtype=np.int64))], "pos")], "embedded")
    split = const("split_shape", np.array([0, steps, heads, head], np.int64))
    merge = const("merge_shape", np.array([0, steps, width], np.int64))
    def linear(x, name, cin, cout):
        return node("Add", [node("MatMul", [x, w(name + ".weight", cin, cout)], name + "_mm"), w(name + ".bias", cout)], name)
    for layer in range(layers):
        p = f"l{layer}"
        heads_of = {}
        for part in "qkv":
            h = node("Reshape", [linear(x, f"{p}.{part}", width, width), split], f"{p}_{part}_split")
            heads_of[part] = node("Transpose", [h], f"{p}_{part}_heads", perm=[0, 2, 1, 3])
        kt = node("Transpose", [heads_of["k"]], f"{p}_kT", perm=[0, 1, 3, 2])
        scores = node("Div", [node("MatMul", [heads_of["q"], kt], f"{p}_scores"), const(f"{p}_scale", np.array(np.sqrt(head), np.float32))], f"{p}_scaled")
        context = node("MatMul", [node("Softmax", [scores], f"{p}_attn", axis=-1), heads_of["v"]], f"{p}_context")
        merged = node("Reshape", [node("Transpose", [context], f"{p}_context_t", perm=[0, 2, 1, 3]), merge], f"{p}_merged")
        x = node("LayerNormalization", [node("Add", [x, linear(merged, f"{p}.o", width, width)], f"{p}_res1"),
                                        const(f"{p}.ln1.weight", np.ones(width, np.float32)), const(f"{p}.ln1.bias", np.zeros(width, np.float32))],
                 f"{p}_ln1", axis=-1, epsilon=1e-5)
        f = linear(x, f"{p}.ff1", width, hidden)
        erf = node("Erf", [node("Div", [f, const(f"{p}_sqrt2", np.array(np.sqrt(2.0), np.float32))], f"{p}_gelu_div")], f"{p}_gelu_erf")
        gelu = node("Mul", [node("Mul", [f, node("Add", [erf, const(f"{p}_one", np.array(1.0, np.float32))], f"{p}_gelu_add")], f"{p}_gelu_mul"),
                            const(f"{p}_half", np.array(0.5, np.float32))], f"{p}_gelu")
        x = node("LayerNormalization", [node("Add", [x, linear(gelu, f"{p}.ff2", hidden, width)], f"{p}_res2"),
                                        const(f"{p}.ln2.weight", np.ones(width, np.float32)), const(f"{p}.ln2.bias", np.zeros(width, np.float32))],
                 f"{p}_ln2", axis=-1, epsilon=1e-5)
    pooled = node("ReduceMean", [x], "pooled", axes=[1], keepdims=0)
    node("Gemm", [pooled, w("head.weight", 10, width), w("head.bias", 10)], "logits", transB=1)
    save(path, "tokens", ["batch", steps], TensorProto.INT64)


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    lenet(os.path.join(out, "lenet.onnx"))
    resnet(os.path.join(out, "resnet.onnx"))
    transformer(os.path.join(out, "transformer.onnx"))
