#!/usr/bin/env python3
"""Times PyTorch's torch.nn.LSTM on the rows `lstm-gpu bench` ran, the same way:
warm-up excluded, median and min-max of repeated runs, forward (no grad) and a training
step (forward + backward of every gradient, input included). Reads the rows as JSON
(lstm-gpu bench --json output, one object per line) and prints one JSON object per row.

  python3 scripts/torch_bench.py --rows rows.jsonl --threads 2 [--seconds 1] [--device cpu]
"""
import argparse, json, sys, time

import torch


def measure(fn, seconds, minimum=3):
    fn()
    samples, start = [], time.perf_counter()
    while True:
        t0 = time.perf_counter(); fn(); t1 = time.perf_counter()
        samples.append((t1 - t0) * 1e3)
        if len(samples) >= minimum and t1 - start >= seconds:
            break
    samples.sort()
    return dict(medianMs=samples[len(samples) // 2], minMs=samples[0], maxMs=samples[-1], runs=len(samples))


def flops(r):
    d, total = r["directions"], 0
    for layer in range(r["layers"]):
        inp = r["I"] if layer == 0 else d * r["H"]
        total += d * 2 * r["T"] * r["B"] * 4 * r["H"] * (inp + r["H"])
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", required=True, help="lstm-gpu bench --json output")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    seen = set()
    for line in open(a.rows):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        key = (r["name"], r["I"], r["H"], r["B"], r["T"], r["layers"], r["directions"])
        if key in seen:
            continue
        seen.add(key)
        torch.manual_seed(1)
        m = torch.nn.LSTM(r["I"], r["H"], num_layers=r["layers"], bidirectional=r["directions"] == 2).to(dev)
        x = torch.rand(r["T"], r["B"], r["I"], device=dev) * 2 - 1
        dy = torch.rand(r["T"], r["B"], r["directions"] * r["H"], device=dev) * 2 - 1

        def forward():
            with torch.no_grad():
                m(x)
            sync()

        xr = x.clone().requires_grad_(True)

        def train():
            y, _ = m(xr)
            y.backward(dy)
            sync()

        f = measure(forward, a.seconds)
        t = measure(train, a.seconds)
        fl = flops(r)
        print(json.dumps(dict(name=r["name"], peer="pytorch " + torch.__version__, device=str(dev),
                              threads=torch.get_num_threads(), forward=f, train=t,
                              forwardGflops=fl / f["medianMs"] / 1e6, trainGflops=3 * fl / t["medianMs"] / 1e6)),
              flush=True)


if __name__ == "__main__":
    main()
