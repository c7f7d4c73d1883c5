# The zoo's networks (Sources/Tensors/Zoo.swift) in PyTorch and in JAX, trained one step at a time
# on a fixed random batch with Adam, as `fedbaechi profile --time-steps` trains them; prints one JSON
# line with the median step time. Run by Benchmarks/frameworks.sh, which pins the process and sets
# the thread count; not part of the test command.
#
#   python3 frameworks.py torch|jax MODEL BATCH STEPS THREADS
import json
import statistics
import sys
import time

framework, model, batch, steps, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
VOCABULARY, EMBEDDING, HIDDEN, SEQUENCE, LAYERS = 10_000, 100, 128, 20, 4
# inception-mini: channel unit 8; each block's widths: 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection.
W = 8
MIXED1, MIXED2 = [2 * W, 2 * W, 3 * W, W, W, W], [4 * W, 3 * W, 6 * W, W, 2 * W, 2 * W]
out_width = lambda widths: widths[0] + widths[2] + widths[4] + widths[5]


def timed(step, sync):
    for _ in range(3):  # warm-up (JAX compiles here)
        sync(step())
    samples = []
    for _ in range(steps):
        start = time.perf_counter()
        sync(step())
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def torch_step():
    import torch
    import torch.nn as nn
    torch.set_num_threads(threads)
    torch.manual_seed(1)

    class Inception(nn.Module):
        def __init__(self, cin, w):
            super().__init__()
            conv = lambda i, o, k: nn.Sequential(nn.Conv2d(i, o, k, padding=k // 2), nn.ReLU())
            self.one = conv(cin, w[0], 1)
            self.three = nn.Sequential(conv(cin, w[1], 1), conv(w[1], w[2], 3))
            self.five = nn.Sequential(conv(cin, w[3], 1), conv(w[3], w[4], 5))
            self.pool = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv(cin, w[5], 1))

        def forward(self, x):
            return torch.cat([self.one(x), self.three(x), self.five(x), self.pool(x)], 1)

    class RNNStack(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(VOCABULARY, EMBEDDING)
            gru = lambda l: nn.GRU(EMBEDDING if l == 0 else HIDDEN, HIDDEN, batch_first=True)
            self.encoder = nn.ModuleList(gru(l) for l in range(LAYERS))
            self.decoder = nn.ModuleList(gru(l) for l in range(LAYERS))
            self.out = nn.Linear(HIDDEN, VOCABULARY)

        def forward(self, tokens):
            x = self.embed(tokens)
            half = SEQUENCE // 2
            sequence, finals = x[:, :half], []
            for l, layer in enumerate(self.encoder):
                out, h = layer(sequence)
                finals.append(h)
                sequence = out + sequence if l >= 2 else out
            sequence = x[:, half:]
            for l, layer in enumerate(self.decoder):
                out, _ = layer(sequence, finals[l])
                sequence = out + sequence if l >= 2 else out
            return self.out(sequence.reshape(-1, HIDDEN))

    class GRULM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(VOCABULARY, EMBEDDING)
            self.gru = nn.GRU(EMBEDDING, HIDDEN, batch_first=True)
            self.out = nn.Linear(HIDDEN, VOCABULARY)

        def forward(self, tokens):
            out, _ = self.gru(self.embed(tokens))
            return self.out(out.reshape(-1, HIDDEN))

    if model == "mlp":
        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 1024), nn.ReLU(), nn.Dropout(0.2),
                            nn.Linear(1024, 1024), nn.ReLU(), nn.Dropout(0.2), nn.Linear(1024, 10))
    elif model == "lenet":
        net = nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(64 * 7 * 7, 512), nn.ReLU(), nn.Linear(512, 10))
    elif model == "inception-mini":
        net = nn.Sequential(nn.Conv2d(1, 2 * W, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), Inception(2 * W, MIXED1),
                            nn.MaxPool2d(2), Inception(out_width(MIXED1), MIXED2), nn.AvgPool2d(7), nn.Flatten(),
                            nn.Dropout(0.2), nn.Linear(out_width(MIXED2), 10))
    elif model == "gru-lm":
        net = GRULM()
    elif model == "rnn-stack":
        net = RNNStack()
    else:
        raise SystemExit(f"unknown model {model}")
    net.train()
    if model in ("gru-lm", "rnn-stack"):
        predicted = SEQUENCE if model == "gru-lm" else SEQUENCE // 2
        inputs = torch.randint(0, VOCABULARY, (batch, SEQUENCE))
        labels = torch.randint(0, VOCABULARY, (batch * predicted,))
    else:
        inputs, labels = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_function = nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_function(net(inputs), labels)
        loss.backward()
        optimizer.step()
        return loss

    return timed(step, lambda loss: loss.item())


def jax_step():
    import jax
    import jax.numpy as jnp
    from jax import lax

    key = jax.random.PRNGKey(1)
    params = {}

    def parameter(name, shape, fan_in):
        nonlocal key
        key, sub = jax.random.split(key)
        bound = 1 / fan_in ** 0.5
        params[name] = jax.random.uniform(sub, shape, jnp.float32, -bound, bound)

    def linear_params(name, i, o):
        parameter(name + ".w", (i, o), i)
        parameter(name + ".b", (o,), i)

    def conv_params(name, i, o, k):
        parameter(name + ".w", (o, i, k, k), i * k * k)
        parameter(name + ".b", (o,), i * k * k)

    def linear(p, name, x):
        return x @ p[name + ".w"] + p[name + ".b"]

    def conv(p, name, x):
        w = p[name + ".w"]
        k = w.shape[-1]
        y = lax.conv_general_dilated(x, w, (1, 1), [(k // 2, k // 2)] * 2, dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return jax.nn.relu(y + p[name + ".b"][None, :, None, None])

    def max_pool(x, k, s, pad):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, k, k), (1, 1, s, s), [(0, 0), (0, 0), (pad, pad), (pad, pad)])

    def dropout(x, rate, key):
        keep = jax.random.bernoulli(key, 1 - rate, x.shape)
        return jnp.where(keep, x / (1 - rate), 0)

    def inception_params(name, cin, w):
        conv_params(name + "/1x1", cin, w[0], 1)
        conv_params(name + "/3x3_reduce", cin, w[1], 1)
        conv_params(name + "/3x3", w[1], w[2], 3)
        conv_params(name + "/5x5_reduce", cin, w[3], 1)
        conv_params(name + "/5x5", w[3], w[4], 5)
        conv_params(name + "/pool_proj", cin, w[5], 1)

    def inception(p, name, x):
        one = conv(p, name + "/1x1", x)
        three = conv(p, name + "/3x3", conv(p, name + "/3x3_reduce", x))
        five = conv(p, name + "/5x5", conv(p, name + "/5x5_reduce", x))
        pooled = conv(p, name + "/pool_proj", max_pool(x, 3, 1, 1))
        return jnp.concatenate([one, three, five, pooled], axis=1)

    def gru_params(name, i):
        parameter(name + ".w_ih", (i, 3 * HIDDEN), HIDDEN)
        parameter(name + ".w_hh", (HIDDEN, 3 * HIDDEN), HIDDEN)
        parameter(name + ".b_ih", (3 * HIDDEN,), HIDDEN)
        parameter(name + ".b_hh", (3 * HIDDEN,), HIDDEN)

    def gru(p, name, xs, h):  # xs: [time, batch, features]
        projected = xs @ p[name + ".w_ih"] + p[name + ".b_ih"]  # all steps' input products at once

        def cell(h, gx):
            gh = h @ p[name + ".w_hh"] + p[name + ".b_hh"]
            r = jax.nn.sigmoid(gx[:, :HIDDEN] + gh[:, :HIDDEN])
            z = jax.nn.sigmoid(gx[:, HIDDEN:2 * HIDDEN] + gh[:, HIDDEN:2 * HIDDEN])
            n = jnp.tanh(gx[:, 2 * HIDDEN:] + r * gh[:, 2 * HIDDEN:])
            h = (1 - z) * n + z * h
            return h, h

        final, outputs = lax.scan(cell, h, projected)
        return outputs, final

    if model == "mlp":
        linear_params("fc1", 784, 1024)
        linear_params("fc2", 1024, 1024)
        linear_params("out", 1024, 10)

        def forward(p, x, key):
            k1, k2 = jax.random.split(key)
            x = dropout(jax.nn.relu(linear(p, "fc1", x.reshape(x.shape[0], -1))), 0.2, k1)
            x = dropout(jax.nn.relu(linear(p, "fc2", x)), 0.2, k2)
            return linear(p, "out", x)
    elif model == "lenet":
        conv_params("conv1", 1, 32, 5)
        conv_params("conv2", 32, 64, 5)
        linear_params("fc1", 64 * 7 * 7, 512)
        linear_params("out", 512, 10)

        def forward(p, x, key):
            x = max_pool(conv(p, "conv1", x), 2, 2, 0)
            x = max_pool(conv(p, "conv2", x), 2, 2, 0)
            x = jax.nn.relu(linear(p, "fc1", x.reshape(x.shape[0], -1)))
            return linear(p, "out", x)
    elif model == "inception-mini":
        conv_params("stem", 1, 2 * W, 3)
        inception_params("mixed1", 2 * W, MIXED1)
        inception_params("mixed2", out_width(MIXED1), MIXED2)
        linear_params("out", out_width(MIXED2), 10)

        def forward(p, x, key):
            x = max_pool(conv(p, "stem", x), 2, 2, 0)
            x = max_pool(inception(p, "mixed1", x), 2, 2, 0)
            x = inception(p, "mixed2", x).mean(axis=(2, 3))
            return linear(p, "out", dropout(x, 0.2, key))
    elif model == "gru-lm":
        parameter("embedding", (VOCABULARY, EMBEDDING), 100)
        gru_params("gru", EMBEDDING)
        linear_params("out", HIDDEN, VOCABULARY)

        def forward(p, tokens, key):
            xs = p["embedding"][tokens].transpose(1, 0, 2)
            outputs, _ = gru(p, "gru", xs, jnp.zeros((tokens.shape[0], HIDDEN)))
            return linear(p, "out", outputs.transpose(1, 0, 2).reshape(-1, HIDDEN))
    elif model == "rnn-stack":
        parameter("embedding", (VOCABULARY, EMBEDDING), 100)
        for side in ("encoder", "decoder"):
            for l in range(LAYERS):
                gru_params(f"{side}{l}", EMBEDDING if l == 0 else HIDDEN)
        linear_params("out", HIDDEN, VOCABULARY)

        def forward(p, tokens, key):
            xs = p["embedding"][tokens].transpose(1, 0, 2)
            half = SEQUENCE // 2
            sequence, finals = xs[:half], []
            zeros = jnp.zeros((tokens.shape[0], HIDDEN))
            for l in range(LAYERS):
                out, h = gru(p, f"encoder{l}", sequence, zeros)
                finals.append(h)
                sequence = out + sequence if l >= 2 else out
            sequence = xs[half:]
            for l in range(LAYERS):
                out, _ = gru(p, f"decoder{l}", sequence, finals[l])
                sequence = out + sequence if l >= 2 else out
            return linear(p, "out", sequence.transpose(1, 0, 2).reshape(-1, HIDDEN))
    else:
        raise SystemExit(f"unknown model {model}")

    def loss_function(p, x, y, key):
        logits = forward(p, x, key)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))

    @jax.jit
    def train_step(p, m, v, t, x, y, key):
        loss, g = jax.value_and_grad(loss_function)(p, x, y, key)
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
        v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
        scale = 1e-3 * jnp.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        p = jax.tree_util.tree_map(lambda p, m, v: p - scale * m / (jnp.sqrt(v) + 1e-8), p, m, v)
        return p, m, v, t, loss

    data_key, dropout_key = jax.random.split(jax.random.PRNGKey(2))
    if model in ("gru-lm", "rnn-stack"):
        predicted = SEQUENCE if model == "gru-lm" else SEQUENCE // 2
        x = jax.random.randint(data_key, (batch, SEQUENCE), 0, VOCABULARY)
        y = jax.random.randint(data_key, (batch * predicted,), 0, VOCABULARY)
    else:
        x = jax.random.uniform(data_key, (batch, 1, 28, 28))
        y = jax.random.randint(data_key, (batch,), 0, 10)
    state = [params, jax.tree_util.tree_map(jnp.zeros_like, params), jax.tree_util.tree_map(jnp.zeros_like, params),
             jnp.float32(0)]
    counter = [0]

    def step():
        counter[0] += 1
        p, m, v, t, loss = train_step(*state, x, y, jax.random.fold_in(dropout_key, counter[0]))
        state[:] = [p, m, v, t]
        return loss

    return timed(step, lambda loss: loss.block_until_ready())


seconds = torch_step() if framework == "torch" else jax_step()
print(json.dumps({"framework": framework, "model": model, "batch": batch, "threads": threads, "steps": steps,
                  "median_ms": seconds * 1000}))
