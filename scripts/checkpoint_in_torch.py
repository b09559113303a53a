#!/usr/bin/env python3
"""Loads a checkpoint of `lstm-gpu train` into PyTorch modules (nn.Embedding, nn.LSTM with
load_state_dict(strict=True) on the "lstm." tensors as they are, nn.Linear), scores a text
with them, and compares with `lstm-gpu sample --score` on the same text.

  python3 scripts/checkpoint_in_torch.py CHECKPOINT [--text TEXT] [--binary .build/release/lstm-gpu]

Needs torch and safetensors.
"""
import argparse, json, os, subprocess, sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--text", default="ROMEO:\nBut soft, what light through yonder window breaks?\n")
    ap.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "lstm-gpu"))
    a = ap.parse_args()

    with safe_open(a.checkpoint, "pt") as f:
        meta = f.metadata()
    config = json.loads(meta["model"])
    vocab = json.loads(meta["vocabulary"])
    tensors = load_file(a.checkpoint)
    cell = config.get("cell") or {}
    used = [k for k in ("peepholes", "coupledInputForget", "layerNorm") if cell.get(k)]
    used += [k for k in ("activationClip", "cellClip", "projectionClip") if cell.get(k, 0) > 0]
    if used:
        sys.exit(f"{a.checkpoint}: the model's LSTM uses cell options torch.nn.LSTM does not have ({', '.join(used)}); "
                 "compare it with scripts/lstm_reference.py instead")

    embedding = torch.nn.Embedding(config["vocabularySize"], config["embeddingSize"])
    projection = config.get("projectionSize", 0)
    lstm = torch.nn.LSTM(config["embeddingSize"], config["hiddenSize"], num_layers=config["layers"], dropout=config["dropout"],
                         proj_size=projection)
    head = torch.nn.Linear(projection or config["hiddenSize"], config["vocabularySize"])
    embedding.load_state_dict({"weight": tensors["embedding.weight"]}, strict=True)
    lstm.load_state_dict({k[len("lstm."):]: v for k, v in tensors.items() if k.startswith("lstm.")}, strict=True)
    head.load_state_dict({"weight": tensors["head.weight"], "bias": tensors["head.bias"]}, strict=True)
    lstm.eval()

    index = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([index[c] for c in a.text])
    with torch.no_grad():
        y, _ = lstm(embedding(ids).unsqueeze(1))          # [T, 1, H]
        logits = head(y.squeeze(1)).double()               # [T, V]
        ce = torch.nn.functional.cross_entropy(logits[:-1], ids[1:]).item()
    print(f"PyTorch: cross-entropy {ce:.6f} nats/char over {len(ids) - 1} predictions")

    ours = subprocess.run([a.binary, "sample", "--checkpoint", a.checkpoint, "--prompt", a.text, "--score"],
                          capture_output=True, text=True)
    if ours.returncode != 0:
        sys.exit(f"lstm-gpu sample failed: {ours.stderr}")
    result = json.loads(ours.stdout)
    diff_logits = (torch.tensor(result["last_logits"], dtype=torch.float64) - logits[-1]).abs().max().item()
    print(f"lstm-gpu: cross-entropy {result['cross_entropy']:.6f}; max |logit difference| at the last step {diff_logits:.2e}")
    ok = abs(result["cross_entropy"] - ce) < 1e-4 and diff_logits < 1e-3
    print("MATCH" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
