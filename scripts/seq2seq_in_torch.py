#!/usr/bin/env python3
"""Rebuilds a seq2seq model file written by lstm-gpu's `Seq2Seq.save(to:)` from torch.nn
modules, loads its tensors with strict=True and compares teacher-forced logits with lstm-gpu's.

The file's metadata key "lstm_gpu_seq2seq" holds the architecture (JSON: format
"lstm-gpu-seq2seq", version 1, "configuration" with sourceVocabularySize,
targetVocabularySize, embeddingSize, hiddenSize, numLayers, dropout, embeddingDropout, padId,
bosId, eosId). The module below has the file's tensor names as its state_dict:

  source_embedding  nn.Embedding(Vs, E)
  encoder           nn.LSTM(E, H, L, dropout)       on packed sources; its (hn, cn) ...
  target_embedding  nn.Embedding(Vt, E)
  decoder           nn.LSTM(E, H, L, dropout)       ... is the decoder's (h0, c0)
  attention         nn.Linear(2H, H)                only with "attention": true (Luong dot attention:
                    scores = decoder outputs · encoder outputs, masked softmax over the valid source
                    steps, context = weights · encoder outputs, tanh(attention(cat[context, h])))
  output            nn.Linear(H, Vt)                per decoder step

(embedding dropout is nn.Dropout after each embedding: identity in eval mode). The inputs file
(default: FILE with ".safetensors" replaced by ".inputs.safetensors") holds "source" I64 [S, B],
"source_lengths" I64 [B], "decoder_input" I64 [T, B] (<bos> + target), "target_lengths" I64 [B]
and "logits" F32 [T, B, Vt], lstm-gpu's logits. The Swift test Seq2SeqTests writes both:

  mkdir -p /tmp/export && LSTM_GPU_MODEL_EXPORT=/tmp/export swift test --filter Seq2SeqTests
  python3 scripts/seq2seq_in_torch.py /tmp/export/seq2seq.safetensors [--inputs FILE] [--tolerance 1e-5]

Prints the max abs difference over the valid steps (padded ones are not compared);
exits 1 above the tolerance, 2 for a file it cannot load.
"""
import argparse, json, sys

import torch
from torch import nn
from safetensors import safe_open
from safetensors.torch import load_file


class Seq2Seq(nn.Module):
    def __init__(self, c):
        super().__init__()
        e, h, l = c["embeddingSize"], c["hiddenSize"], c["numLayers"]
        self.source_embedding = nn.Embedding(c["sourceVocabularySize"], e)
        self.encoder = nn.LSTM(e, h, num_layers=l, dropout=c["dropout"])
        self.target_embedding = nn.Embedding(c["targetVocabularySize"], e)
        self.decoder = nn.LSTM(e, h, num_layers=l, dropout=c["dropout"])
        self.attention = nn.Linear(2 * h, h) if c.get("attention") else None
        self.output = nn.Linear(h, c["targetVocabularySize"])

    def forward(self, source, source_lengths, decoder_input, target_lengths):
        packed = nn.utils.rnn.pack_padded_sequence(
            self.source_embedding(source), source_lengths, enforce_sorted=False)
        memory, state = self.encoder(packed)
        memory, _ = nn.utils.rnn.pad_packed_sequence(memory, total_length=source.shape[0])  # [S, B, H]
        packed = nn.utils.rnn.pack_padded_sequence(
            self.target_embedding(decoder_input), target_lengths, enforce_sorted=False)
        y, _ = self.decoder(packed, state)
        y, _ = nn.utils.rnn.pad_packed_sequence(y, total_length=decoder_input.shape[0])  # [T, B, H]
        if self.attention is not None:
            scores = torch.einsum("tbh,sbh->bts", y, memory)
            valid = torch.arange(source.shape[0])[None, :] < source_lengths[:, None]  # [B, S]
            weights = torch.softmax(scores.masked_fill(~valid[:, None, :], float("-inf")), dim=-1)
            context = torch.einsum("bts,sbh->tbh", weights, memory)
            y = torch.tanh(self.attention(torch.cat([context, y], dim=-1)))
        return self.output(y)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file")
    parser.add_argument("--inputs")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    args = parser.parse_args()
    with safe_open(args.file, "pt") as f:
        metadata = f.metadata() or {}
    try:
        architecture = json.loads(metadata["lstm_gpu_seq2seq"])
        if architecture["format"] != "lstm-gpu-seq2seq" or architecture["version"] != 1:
            raise ValueError(f"format {architecture['format']} version {architecture['version']}")
        model = Seq2Seq(architecture["configuration"])
        model.load_state_dict(load_file(args.file), strict=True)
    except (KeyError, ValueError, RuntimeError) as error:
        print(f"seq2seq_in_torch.py: cannot load {args.file}: {error}", file=sys.stderr)
        sys.exit(2)
    model.eval()
    inputs = load_file(args.inputs or args.file.replace(".safetensors", ".inputs.safetensors"))
    with torch.no_grad():
        logits = model(inputs["source"], inputs["source_lengths"], inputs["decoder_input"],
                       inputs["target_lengths"])
    expected = inputs["logits"]
    steps = logits.shape[0]
    valid = torch.arange(steps)[:, None] < inputs["target_lengths"][None, :]
    difference = (logits - expected).abs()[valid].max().item()
    print(f"seq2seq logits {tuple(logits.shape)}: max |torch - lstm-gpu| = {difference:.3g}")
    sys.exit(0 if difference <= args.tolerance else 1)


if __name__ == "__main__":
    main()
