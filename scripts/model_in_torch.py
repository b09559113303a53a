#!/usr/bin/env python3
"""Rebuilds a whole-model file written by lstm-gpu's `Sequential.save(to:)` from torch.nn
modules, loads its tensors with strict=True and compares outputs with lstm-gpu's.

The file's metadata key "lstm_gpu_model" holds the architecture (JSON: format
"lstm-gpu-sequential", version 1, one entry per layer); its tensors carry nn.Sequential
names ("0.weight", "1.weight_ih_l0", ...). Each layer becomes:

  embedding  nn.Embedding(V, E)
  lstm       nn.LSTM(input_size, hidden_size, num_layers, bias, dropout, bidirectional,
             proj_size), run on packed sequences so padded steps are skipped (their
             outputs are 0, as lstm-gpu's). An LSTM with cell options (peepholes, CIFG,
             layer norm, clipping) or `reverse` has no torch.nn.LSTM equivalent: refused.
  linear     nn.Linear(in, out), on rows or on every step of a sequence
  dropout    nn.Dropout(p) (identity here: the model runs in eval mode)
  pooling    last / mean / max over each sequence's valid steps (0 for a length-0 one)

The inputs file (default: FILE with ".safetensors" replaced by ".inputs.safetensors") holds
"ids" I64 [T, B], "lengths" I64 [B] and "expected" F32, lstm-gpu's inference output for them.
The Swift test ModelSaveTests writes both files into $LSTM_GPU_MODEL_EXPORT:

  mkdir -p /tmp/export && LSTM_GPU_MODEL_EXPORT=/tmp/export swift test --filter ModelSaveTests
  python3 scripts/model_in_torch.py /tmp/export/classifier.safetensors [--inputs FILE]
      [--tolerance 1e-5] [--device cpu]

Prints the max abs difference between torch's output and "expected"; exits 1 above the
tolerance, 2 for a file it cannot rebuild (cell options, unknown layer, load failure).
"""
import argparse, json, sys

import torch
from torch import nn
from safetensors import safe_open
from safetensors.torch import load_file

def refuse(message):
    print(f"model_in_torch.py: {message}", file=sys.stderr)
    sys.exit(2)


CELL_OPTIONS = ["peepholes", "coupledInputForget", "layerNorm", "activationClip", "cellClip", "projectionClip",
                "reverse"]


class LSTMWithLengths(nn.Module):
    """nn.LSTM over [T, B, I] with per-sequence lengths; padded steps give 0."""

    def __init__(self, c):
        super().__init__()
        used = [k for k in CELL_OPTIONS if c.get(k)]
        if used:
            refuse(f"an LSTM with {', '.join(used)} has no torch.nn.LSTM equivalent")
        self.lstm = nn.LSTM(c["inputSize"], c["hiddenSize"], num_layers=c["numLayers"], bias=c["bias"],
                            dropout=c.get("dropout", 0), bidirectional=c["bidirectional"],
                            proj_size=c["projectionSize"])

    def forward(self, x, lengths):
        steps, batch = x.shape[0], x.shape[1]
        width = self.lstm.hidden_size if self.lstm.proj_size == 0 else self.lstm.proj_size
        out = x.new_zeros(steps, batch, width * (2 if self.lstm.bidirectional else 1))
        keep = (lengths > 0).nonzero().flatten()
        if len(keep):
            packed = nn.utils.rnn.pack_padded_sequence(x[:, keep], lengths[keep].cpu(), enforce_sorted=False)
            y, _ = self.lstm(packed)
            y, _ = nn.utils.rnn.pad_packed_sequence(y, total_length=steps)
            out[:, keep] = y
        return out


class Pooling(nn.Module):
    def __init__(self, mode):
        super().__init__()
        self.mode = mode

    def forward(self, x, lengths):
        steps = x.shape[0]
        valid = (torch.arange(steps, device=x.device)[:, None] < lengths[None, :])[..., None]  # [T, B, 1]
        if self.mode == "mean":
            total = (x * valid).sum(0)
            return total / lengths.clamp(min=1)[:, None].to(x.dtype)
        if self.mode == "max":
            best = x.masked_fill(~valid, float("-inf")).max(0).values
            return torch.where(lengths[:, None] > 0, best, torch.zeros_like(best))
        last = (lengths - 1).clamp(min=0)
        picked = x[last, torch.arange(x.shape[1], device=x.device)]
        return torch.where(lengths[:, None] > 0, picked, torch.zeros_like(picked))


class Model(nn.Sequential):
    """nn.Sequential whose forward hands the lengths to the layers that need them."""

    def forward(self, ids, lengths):
        value = ids
        for module in self:
            value = module(value, lengths) if isinstance(module, (LSTMWithLengths, Pooling)) else module(value)
        return value


def build(architecture):
    if architecture.get("format") != "lstm-gpu-sequential" or architecture.get("version") != 1:
        refuse(f"unsupported format/version {architecture.get('format')!r} "
                         f"{architecture.get('version')!r}")
    modules = []
    for i, d in enumerate(architecture["layers"]):
        kind = d["kind"]
        if kind == "embedding":
            modules.append(nn.Embedding(d["vocabularySize"], d["dimension"]))
        elif kind == "lstm":
            modules.append(LSTMWithLengths(d["lstm"]))
        elif kind == "linear":
            modules.append(nn.Linear(d["inputSize"], d["outputSize"]))
        elif kind == "dropout":
            modules.append(nn.Dropout(d["probability"]))
        elif kind == "pooling":
            modules.append(Pooling(d["mode"]))
        else:
            refuse(f"layer {i}: unknown kind {kind!r}")
    return Model(*modules)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file")
    parser.add_argument("--inputs", help="ids, lengths, expected (default: FILE's .inputs.safetensors)")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    args = parser.parse_args()

    with safe_open(args.file, framework="pt") as f:
        metadata = f.metadata() or {}
    if "lstm_gpu_model" not in metadata:
        refuse(f"{args.file} has no 'lstm_gpu_model' metadata (not a model file)")
    model = build(json.loads(metadata["lstm_gpu_model"]))
    # Our LSTM wrapper holds nn.LSTM as `.lstm`: map "1.weight_ih_l0" to "1.lstm.weight_ih_l0".
    tensors = load_file(args.file)
    lstm_positions = {str(i) for i, m in enumerate(model) if isinstance(m, LSTMWithLengths)}
    state = {(k.replace(".", ".lstm.", 1) if k.split(".", 1)[0] in lstm_positions else k): v
             for k, v in tensors.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        refuse(f"strict load failed: {error}")
    model.to(args.device).eval()

    inputs = load_file(args.inputs or args.file.removesuffix(".safetensors") + ".inputs.safetensors")
    ids, lengths = inputs["ids"].to(args.device), inputs["lengths"].to(args.device)
    with torch.no_grad():
        out = model(ids, lengths).cpu()
    expected = inputs["expected"]
    if tuple(out.shape) != tuple(expected.shape):
        print(f"shape: torch {tuple(out.shape)}, lstm-gpu {tuple(expected.shape)}")
        sys.exit(1)
    worst = (out - expected).abs().max().item()
    print(f"{args.file}: {len(model)} layers, output {tuple(out.shape)}, max abs difference {worst:.3g}")
    sys.exit(0 if worst <= args.tolerance else 1)


if __name__ == "__main__":
    main()
