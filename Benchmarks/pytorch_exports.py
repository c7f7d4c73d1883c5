"""Exports real PyTorch models with both of PyTorch's ONNX exporters and trains each with fedbaechi.

For every model (an MLP, a ResNet-style CNN with batch normalization, embedding + GRU and embedding +
LSTM language models, a transformer encoder with hand-written multi-head attention and one built from
nn.TransformerEncoderLayer) and every export (TorchScript-based, opset 17 and 18, eval mode; the same
with training=TrainingMode.TRAINING and do_constant_folding=False; the dynamo-based exporter), it runs

    fedbaechi train single --model M.onnx --train-data train.npz --test-data test.npz --steps S --export out.onnx

and reports: whether the model was read (or the refusal), the first and last step losses, the test
accuracy fedbaechi reported, and onnxruntime's accuracy on the exported model (equal when the export
is right). Needs torch (Benchmarks/pytorch-exports.sh installs it in a virtual environment).

    python pytorch_exports.py FEDBAECHI OUT_DIR
"""
import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
rng = np.random.default_rng(0)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.drop = nn.Linear(20, 64), nn.Linear(64, 4), nn.Dropout(0.1)

    def forward(self, x):
        return self.fc2(self.drop(F.relu(self.fc1(x))))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.short = nn.Sequential() if stride == 1 and cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))) + self.short(x))


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.bn = nn.Conv2d(1, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8)
        self.blocks = nn.Sequential(Block(8, 8, 1), Block(8, 16, 2))
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class RecurrentLM(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.rnn = (nn.GRU if cell == "gru" else nn.LSTM)(8, 16, batch_first=True)
        self.out = nn.Linear(16, 10)

    def forward(self, tokens):
        y, _ = self.rnn(self.embed(tokens))
        return self.out(y)


class Attention(nn.Module):
    def __init__(self, width=16, heads=2):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(width, width) for _ in range(4))
        self.heads, self.head = heads, width // heads

    def forward(self, x):
        b, t, w = x.shape
        split = lambda y: y.view(b, t, self.heads, self.head).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        a = torch.softmax(q @ k.transpose(-2, -1) / self.head ** 0.5, dim=-1)
        return self.o((a @ v).transpose(1, 2).reshape(b, t, w))


class Transformer(nn.Module):
    def __init__(self, library_layer=False):
        super().__init__()
        self.tok, self.pos = nn.Embedding(12, 16), nn.Parameter(torch.randn(8, 16) * 0.1)
        self.library_layer = library_layer
        if library_layer:
            self.layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        else:
            self.attn, self.ln1, self.ff1, self.ff2, self.ln2 = Attention(), nn.LayerNorm(16), nn.Linear(16, 32), nn.Linear(32, 16), nn.LayerNorm(16)
        self.head = nn.Linear(16, 2)

    def forward(self, tokens):
        x = self.tok(tokens) + self.pos
        if self.library_layer:
            x = self.layer(x)
        else:
            x = self.ln1(x + self.attn(x))
            x = self.ln2(x + self.ff2(F.gelu(self.ff1(x))))
        return self.head(x.mean(1))


def data(kind, count):
    if kind == "mlp":
        x = rng.uniform(-1, 1, (count, 20)).astype(np.float32)
        return x, ((x[:, :10].sum(1) > 0) * 2 + (x[:, 10:].sum(1) > 0)).astype(np.int64)
    if kind == "image":
        y = rng.integers(0, 3, count)
        x = rng.integers(0, 90, (count, 1, 8, 8))
        x[y == 0, :, :4, :] += 120
        x[y == 1, :, :, :4] += 120
        return x.astype(np.uint8), y.astype(np.int64)
    if kind == "lm":
        seq = (rng.integers(0, 10, (count, 1)) + np.arange(7)) % 10
        return seq[:, :6].astype(np.int64), seq[:, 1:].astype(np.int64)
    x = rng.integers(0, 12, (count, 8))
    return x.astype(np.int64), (x == 3).any(1).astype(np.int64)


MODELS = [("mlp", MLP, "mlp", lambda: torch.randn(4, 20)), ("resnet", ResNet, "image", lambda: torch.randn(4, 1, 8, 8)),
          ("gru-lm", lambda: RecurrentLM("gru"), "lm", lambda: torch.randint(0, 10, (4, 6))),
          ("lstm-lm", lambda: RecurrentLM("lstm"), "lm", lambda: torch.randint(0, 10, (4, 6))),
          ("transformer", Transformer, "tokens", lambda: torch.randint(0, 12, (4, 8))),
          ("transformer-library", lambda: Transformer(True), "tokens", lambda: torch.randint(0, 12, (4, 8)))]

EXPORTS = [("torchscript-17", dict(dynamo=False, opset_version=17)),
           ("torchscript-18", dict(dynamo=False, opset_version=18)),
           ("torchscript-train", dict(dynamo=False, opset_version=17, training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)),
           ("dynamo", dict(dynamo=True, opset_version=18))]


def main(binary, out):
    os.makedirs(out, exist_ok=True)
    rows = []
    for name, make, kind, example in MODELS:
        for split, count in [("train", 512), ("test", 128)]:
            x, y = data(kind, count)
            np.savez(os.path.join(out, f"{name}-{split}.npz"), x=x, y=y)
        for export, options in EXPORTS:
            model = make()
            model.train(options.get("training") == torch.onnx.TrainingMode.TRAINING)
            path = os.path.join(out, f"{name}-{export}.onnx")
            row = {"model": name, "export": export}
            try:
                kwargs = dict(input_names=["input"], output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
                if options.get("dynamo"):
                    kwargs = dict(input_names=["input"], output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch", min=2)},))
                torch.onnx.export(model, (example(),), path, **kwargs, **options)
            except Exception as error:  # an exporter's own limitation, not fedbaechi's
                row["result"] = "export failed: " + str(error).splitlines()[0][:100]
                rows.append(row)
                continue
            trained = path.replace(".onnx", "-trained.onnx")
            metrics = path.replace(".onnx", ".jsonl")
            run = subprocess.run([binary, "train", "single", "--model", path, "--train-data", os.path.join(out, f"{name}-train.npz"),
                                  "--test-data", os.path.join(out, f"{name}-test.npz"), "--steps", "48", "--batch", "32",
                                  "--learning-rate", "0.01", "--log-every", "1", "--metrics", metrics, "--export", trained],
                                 capture_output=True, text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
            if run.returncode != 0:
                row["result"] = "refused: " + run.stderr.strip().splitlines()[-1][:160]
                rows.append(row)
                continue
            records = [json.loads(line) for line in open(metrics)]
            steps = [r["loss"] for r in records if r["kind"] == "step"]
            epoch = [r for r in records if r["kind"] == "epoch"][-1]
            x, y = (np.load(os.path.join(out, f"{name}-test.npz"))[k] for k in "xy")
            feed = x.astype(np.float32) / 255 if x.dtype == np.uint8 else x
            session = ort.InferenceSession(trained, providers=["CPUExecutionProvider"])
            logits = session.run(None, {session.get_inputs()[0].name: feed})[0]
            row.update(result="trained", first_loss=round(steps[0], 4), last_loss=round(steps[-1], 4),
                       accuracy=round(epoch["test_accuracy"], 4), onnxruntime_accuracy=round(float((logits.argmax(-1) == y).mean()), 4))
            rows.append(row)
    print("| model | export | result | first → last step loss | fedbaechi test accuracy | onnxruntime on the export |")
    print("|---|---|---|---|---:|---:|")
    for r in rows:
        if r["result"] == "trained":
            print(f"| {r['model']} | {r['export']} | trained | {r['first_loss']} → {r['last_loss']} | {r['accuracy']} | {r['onnxruntime_accuracy']} |")
        else:
            print(f"| {r['model']} | {r['export']} | {r['result']} | | | |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
