"""PyTorch-CPU reference for `deno task bench`: the same ResNet-18 training and inference steps.

Issue 9's targets are fractions of PyTorch on the same cores, so this prints PyTorch's images/s
on this machine, to be run next to `deno task bench` (ratios are only meaningful in one run on a
quiet machine). Needs Debian's python3-torch and python3-torchvision (not needed by any test):

    /usr/bin/python3 cli/bench_pytorch.py --sizes 64,224 --batch-size 16 --steps 3

Train step: model.train(), CrossEntropyLoss(reduction="sum") as d2l's train_batch_ch13, SGD
lr 1e-5 weight decay 1e-3 (bench_setup.ts's setupStep), backward, step. Inference: model.eval() under
no_grad. Threads: one per core (`--threads`; Debian's torch defaults to 1 here).
"""
import argparse
import json
import os
import time

import torch
import torchvision


def bench_size(size: int, batch: int, steps: int) -> dict:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=2)
    opt = torch.optim.SGD(model.parameters(), lr=1e-5, weight_decay=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")
    x = torch.rand(batch, 3, size, size) * 2 - 1
    y = torch.arange(batch) % 2

    def train_step():
        model.train()
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    def infer():
        model.eval()
        with torch.no_grad():
            model(x)

    train_step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        train_step()
    train = steps * batch / (time.perf_counter() - t0)
    infer()
    t0 = time.perf_counter()
    for _ in range(steps):
        infer()
    inference = steps * batch / (time.perf_counter() - t0)
    return {"size": size, "batch": batch, "train_images_per_sec": train,
            "infer_images_per_sec": inference}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,224")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = [bench_size(int(s), args.batch_size, args.steps) for s in args.sizes.split(",")]
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                      "training": results}))


if __name__ == "__main__":
    main()
