# The lenet of `fedbaechi profile --model lenet` (Zoo.swift: 5x5 conv 32 pad 2, ReLU, 2x2 max pool,
# 5x5 conv 64 pad 2, ReLU, 2x2 max pool, dense 512, ReLU, dense 10, softmax cross-entropy, Adam 0.001)
# trained one step at a time on a fixed random batch with one thread; prints the median step time.
#   taskset -c 1 /work/venv-torch/bin/python Benchmarks/lenet_torch.py [batch] [steps]
import sys, time, statistics, torch
from torch import nn

batch = int(sys.argv[1]) if len(sys.argv) > 1 else 64
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 30
torch.set_num_threads(1)
torch.manual_seed(1)
model = nn.Sequential(
    nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(64 * 7 * 7, 512), nn.ReLU(), nn.Linear(512, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
loss_fn = nn.CrossEntropyLoss()
images = torch.rand(batch, 1, 28, 28)
labels = torch.randint(0, 10, (batch,))

def step():
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(images), labels)
    loss.backward()
    optimizer.step()

step()  # warm-up
times = []
for _ in range(steps):
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)
print(f"torch {torch.__version__} lenet batch {batch}: median step {statistics.median(times) * 1e3:.2f} ms "
      f"over {steps} steps, threads {torch.get_num_threads()}")
