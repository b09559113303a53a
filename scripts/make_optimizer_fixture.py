#!/usr/bin/env python3
"""Writes Tests/LSTMKitTests/Fixtures/training/optimizers.safetensors: a parameter, five
gradients, and the parameter after each step of PyTorch's SGD / Adam / AdamW (float64 from
the stored float32 values), for several hyper-parameter sets; plus clip_grad_norm_ cases.
The metadata lists the cases as JSON."""
import json, os
import torch
from safetensors.torch import save_file

CASES = [
    ("sgd", dict(lr=0.1)),
    ("sgd-momentum", dict(lr=0.05, momentum=0.9)),
    ("sgd-nesterov-wd", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("adam", dict(lr=0.01)),
    ("adam-wd", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    ("adamw", dict(lr=0.01, weight_decay=0.1)),
]


def main():
    g = torch.Generator().manual_seed(3)
    p0 = torch.randn(7, 5, generator=g)
    grads = [torch.randn(7, 5, generator=g) for _ in range(5)]
    t = {"p0": p0}
    for i, gr in enumerate(grads):
        t[f"grad{i}"] = gr
    for name, kw in CASES:
        p = torch.nn.Parameter(p0.double().clone())
        kind = name.split("-")[0]
        opt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind]([p], **kw)
        for i, gr in enumerate(grads):
            p.grad = gr.double().clone()
            opt.step()
            t[f"{name}.step{i}"] = p.detach().float().clone()
    # clipping: two tensors, norm above and below the limit
    a, b = torch.randn(4, 3, generator=g) * 3, torch.randn(6, generator=g) * 3
    for limit in (1.0, 100.0):
        pa, pb = torch.nn.Parameter(torch.zeros(4, 3, dtype=torch.float64)), torch.nn.Parameter(torch.zeros(6, dtype=torch.float64))
        pa.grad, pb.grad = a.double().clone(), b.double().clone()
        torch.nn.utils.clip_grad_norm_([pa, pb], limit)
        t[f"clip{int(limit)}.a"], t[f"clip{int(limit)}.b"] = pa.grad.float(), pb.grad.float()
    t["clip.a"], t["clip.b"] = a, b
    meta = {"format": "lstm-optimizer-fixture/1", "cases": json.dumps([[n, {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()}] for n, kw in CASES])}
    out = os.path.join(os.path.dirname(__file__), "..", "Tests", "LSTMKitTests", "Fixtures", "training", "optimizers.safetensors")
    save_file({k: v.contiguous() for k, v in t.items()}, out, metadata=meta)
    print(out)


if __name__ == "__main__":
    main()
