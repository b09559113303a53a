#!/usr/bin/env python3
"""Writes the parity fixtures (format `lstm-fixture/1`, see README "Parity fixtures")
from PyTorch's torch.nn.LSTM. The reference values are computed in float64 from the
stored float32 inputs and weights, then stored as float32.

  python3 scripts/make_fixtures.py [--out Tests/LSTMKitTests/Fixtures] [--seed 0]
  python3 scripts/make_fixtures.py --random 20 --out /tmp/extra   # other shapes and seeds
  python3 scripts/make_fixtures.py --only saturated-1e2,saturated-1e30  # just these cases

Each case's seed comes from its position in CASES, so new cases go at the end and the files
of the others do not change (a file whose tensors and metadata are already those of its case
is left alone, so its bytes stay as committed). `scale` multiplies W_ih, W_hh and the biases (not W_hr) after
the draw, so pre-activations reach about that magnitude (saturated gates, mixed signs) while
every value stays finite in float32. A case's `seed` replaces its position; `min_margin`
asserts that every gate pre-activation is at least that far from 0 (unidirectional cases
without projection or lengths).

Cell options (cases named opt-*, after all the torch.nn.LSTM cases): their references come
from the float64 NumPy oracle scripts/lstm_reference.py (forward and hand-written
backward; self-checked by scripts/check_lstm_reference.py against torch.nn.LSTM, finite
differences and onnxruntime), computed from the stored float32 values (clips and epsilon
rounded to float32 as the engine reads them). Option keys: peephole, cifg, layer_norm,
layer_norm_eps, activation_clip, cell_clip, proj_clip, reverse (the metadata keys of the
README's "Cell options", written only when not default); the new tensors (weight_ci/cf/co_l*,
layer_norm_weight_{i,f,g,o}_l*) and their grad.<name> are stored by those names.
Draws: weights uniform(-1, 1) (W_ih, W_hh, biases times `scale`), layer-norm gains
uniform(0.5, 1.5), peepholes uniform(-1, 1). Every clipped value is asserted to lie at
least `min_clip_margin` (default 1e-3) from its bound, so float32 rounding cannot flip a
clamp; the script prints the fraction clipped at each clip and that margin.

  opt-peephole                  peepholes
  opt-cifg                      coupled input-forget gate (3 gate rows f, g, o)
  opt-layer-norm                layer norm (scale 3)
  opt-activation-clip           activation clip 1.5 (scale 3)
  opt-cell-clip                 cell clip 0.75
  opt-proj-clip                 projection 4 + projection clip 0.3
  opt-reverse                   a single reverse direction
  opt-peephole-lengths          peepholes, lengths [3, 5, 0, 2]
  opt-cifg-bi                   CIFG, bidirectional
  opt-layer-norm-layers-3       layer norm, epsilon 1e-3, 3 layers
  opt-clips-batch-first         activation clip 1 + cell clip 0.5, batch_first
  opt-no-bias                   peepholes + layer norm + cell clip, no bias, 2 layers
  opt-reverse-layers-lengths    reverse, projection, 2 layers, lengths [0, 4, 2]
  opt-h13                       H = 13: peepholes + CIFG + activation clip
  opt-wide                      H = 20, I = 16: layer norm + cell clip + projection 8 + proj clip
  opt-all-bi-layers             peepholes + layer norm + cell clip + activation clip + projection
                                + proj clip, lengths (with 0), 2 layers, bidirectional
  opt-cifg-peephole-ln-reverse  CIFG + peepholes + layer norm + reverse, lengths (with 0)
  opt-forward-only              CIFG + peepholes + layer norm + clips, bidirectional, 2 layers,
                                lengths; no gradients
  opt-all-cifg-batch-first      every option but reverse, with CIFG, batch_first, 3 layers, no bias

`--random N --options` draws cell options too.

Needs torch and safetensors (a venv: `python3 -m venv ~/torchenv && ~/torchenv/bin/pip install torch safetensors`).
"""
import argparse, os, random, sys
import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstm_reference import LSTMConfig, lstm_forward, lstm_backward, clip_report

# cell options: a case with any of these gets its reference from the NumPy oracle
OPTION_KEYS = ("peephole", "cifg", "layer_norm", "layer_norm_eps", "activation_clip", "cell_clip",
               "proj_clip", "reverse")

# name: I, H, L, B, T, options
CASES = {
    "basic":            dict(I=5, H=7, L=1, B=3, T=4),
    "steps-1":          dict(I=4, H=6, L=1, B=2, T=1),
    "batch-1":          dict(I=6, H=5, L=1, B=1, T=6),
    "layers-2":         dict(I=6, H=5, L=2, B=3, T=5),
    "layers-3":         dict(I=3, H=4, L=3, B=2, T=4),
    "bidirectional":    dict(I=5, H=6, L=1, B=3, T=5, bidirectional=True),
    "projection":       dict(I=5, H=6, L=1, B=3, T=4, proj=3),
    "batch-first":      dict(I=4, H=5, L=1, B=3, T=4, batch_first=True),
    "lengths-unsorted": dict(I=4, H=6, L=1, B=4, T=5, lengths=[3, 5, 1, 4]),
    "lengths-zero":     dict(I=4, H=5, L=2, B=3, T=4, lengths=[0, 4, 2]),
    "lengths-full":     dict(I=3, H=4, L=1, B=2, T=3, lengths=[3, 3]),
    "zero-state":       dict(I=5, H=6, L=2, B=2, T=3, zero_state=True),
    "no-bias":          dict(I=5, H=6, L=2, B=2, T=4, bias=False),
    "odd-sizes":        dict(I=13, H=17, L=1, B=5, T=7),
    "wide":             dict(I=24, H=40, L=1, B=6, T=9),
    "bi-proj-lengths":  dict(I=7, H=9, L=2, B=4, T=5, bidirectional=True, proj=4, lengths=[5, 0, 2, 4]),
    "everything":       dict(I=6, H=11, L=3, B=3, T=6, bidirectional=True, proj=5, batch_first=True,
                             lengths=[2, 6, 0], bias=False),
    "bi-3layer-lengths": dict(I=9, H=10, L=3, B=5, T=4, bidirectional=True, lengths=[4, 1, 3, 4, 2]),
    "forward-only":     dict(I=5, H=7, L=2, B=3, T=4, bidirectional=True, forward_only=True),
    # saturated gates: |pre-activation| about 1e2, 1e4, 1e30 (H ≥ 8 so the CPU path's SIMD
    # blocks run as well as its partial block)
    "saturated-1e2":    dict(I=5, H=10, L=1, B=3, T=5, scale=1e2),
    # seed picked so that no gate comes within 20 of 0 (min_margin checks it): there float32
    # sums of 1e4-sized terms (error ~1e-3) would decide the gradients' parity by luck.
    "saturated-1e4":    dict(I=6, H=12, L=2, B=3, T=4, scale=1e4, seed=5020, min_margin=20),
    "saturated-1e30":   dict(I=4, H=9, L=1, B=2, T=4, scale=1e30),
    "saturated-bi":     dict(I=5, H=8, L=2, B=3, T=4, bidirectional=True, lengths=[4, 2, 3], scale=1e4),
    "saturated-proj":   dict(I=4, H=11, L=2, B=2, T=4, proj=3, scale=1e30),
    # cell options (references from scripts/lstm_reference.py). A `seed` here was picked so
    # that every clipped value lies at least min_clip_margin (1e-3) from its bound.
    "opt-peephole":          dict(I=5, H=7, L=1, B=3, T=4, peephole=True),
    "opt-cifg":              dict(I=5, H=7, L=1, B=3, T=4, cifg=True),
    "opt-layer-norm":        dict(I=5, H=7, L=1, B=3, T=4, layer_norm=True, scale=3),
    "opt-activation-clip":   dict(I=5, H=7, L=1, B=3, T=4, activation_clip=1.5, scale=3),
    "opt-cell-clip":         dict(I=5, H=7, L=1, B=3, T=5, cell_clip=0.75, scale=2),
    "opt-proj-clip":         dict(I=5, H=8, L=1, B=3, T=4, proj=4, proj_clip=0.3, scale=2),
    "opt-reverse":           dict(I=5, H=7, L=1, B=3, T=4, reverse=True),
    "opt-peephole-lengths":  dict(I=4, H=6, L=1, B=4, T=5, peephole=True, lengths=[3, 5, 0, 2]),
    "opt-cifg-bi":           dict(I=5, H=6, L=1, B=3, T=4, cifg=True, bidirectional=True),
    "opt-layer-norm-layers-3": dict(I=3, H=5, L=3, B=2, T=4, layer_norm=True, layer_norm_eps=1e-3, scale=3),
    "opt-clips-batch-first": dict(I=4, H=6, L=1, B=3, T=4, batch_first=True, activation_clip=1.0,
                                  cell_clip=0.5, scale=2.5),
    "opt-no-bias":           dict(I=5, H=6, L=2, B=2, T=4, bias=False, peephole=True, layer_norm=True,
                                  cell_clip=0.5, scale=2, seed=157),
    "opt-reverse-layers-lengths": dict(I=4, H=5, L=2, B=3, T=4, reverse=True, proj=3, lengths=[0, 4, 2]),
    "opt-h13":               dict(I=11, H=13, L=1, B=4, T=5, peephole=True, cifg=True, activation_clip=1.5,
                                  scale=2),
    "opt-wide":              dict(I=16, H=20, L=1, B=4, T=6, layer_norm=True, cell_clip=1.0, proj=8,
                                  proj_clip=0.3, scale=2),
    "opt-all-bi-layers":     dict(I=6, H=9, L=2, B=4, T=5, bidirectional=True, proj=4, peephole=True,
                                  layer_norm=True, cell_clip=0.75, activation_clip=1.5, proj_clip=0.3,
                                  lengths=[5, 0, 3, 2], scale=2.5, seed=345),
    "opt-cifg-peephole-ln-reverse": dict(I=5, H=7, L=1, B=4, T=5, cifg=True, peephole=True, layer_norm=True,
                                         reverse=True, lengths=[2, 5, 0, 4], scale=2.5),
    "opt-forward-only":      dict(I=5, H=7, L=2, B=3, T=4, bidirectional=True, peephole=True, cifg=True,
                                  layer_norm=True, cell_clip=0.75, activation_clip=1.5, lengths=[4, 1, 3],
                                  scale=2.5, forward_only=True),
    "opt-all-cifg-batch-first": dict(I=4, H=6, L=3, B=3, T=4, batch_first=True, bias=False, proj=3, cifg=True,
                                     peephole=True, layer_norm=True, cell_clip=0.4, activation_clip=1.0,
                                     proj_clip=0.3, lengths=[4, 2, 3], scale=3),
}


def make_case(name, I, H, L, B, T, bidirectional=False, proj=0, batch_first=False, lengths=None,
              bias=True, zero_state=False, forward_only=False, scale=None, seed=0, **options):
    if options:
        return make_option_case(name, I, H, L, B, T, bidirectional, proj, batch_first, lengths, bias,
                                zero_state, forward_only, scale, seed, **options)
    g = torch.Generator().manual_seed(seed)
    D = 2 if bidirectional else 1
    Hout = proj if proj else H
    m32 = torch.nn.LSTM(I, H, num_layers=L, bias=bias, batch_first=batch_first,
                        bidirectional=bidirectional, proj_size=proj)
    with torch.no_grad():
        for p in m32.parameters():
            p.copy_(torch.rand(p.shape, generator=g) * 2 - 1)  # wider than the default init
        if scale is not None:
            for k, p in m32.named_parameters():
                if not k.startswith("weight_hr"):
                    p.mul_(scale)
    weights = {k: v.detach().clone().float().contiguous() for k, v in m32.state_dict().items()}
    x = torch.randn((B, T, I) if batch_first else (T, B, I), generator=g)
    h0 = torch.zeros(L * D, B, Hout) if zero_state else torch.randn(L * D, B, Hout, generator=g) * 0.5
    c0 = torch.zeros(L * D, B, H) if zero_state else torch.randn(L * D, B, H, generator=g) * 0.5
    gy = torch.randn((B, T, D * Hout) if batch_first else (T, B, D * Hout), generator=g)
    ghn = torch.randn(L * D, B, Hout, generator=g)
    gcn = torch.randn(L * D, B, H, generator=g)

    # float64 reference from the float32 values
    m = torch.nn.LSTM(I, H, num_layers=L, bias=bias, batch_first=batch_first,
                      bidirectional=bidirectional, proj_size=proj).double()
    m.load_state_dict({k: v.double() for k, v in weights.items()})
    xd = x.double().requires_grad_(True)
    h0d = h0.double().requires_grad_(True)
    c0d = c0.double().requires_grad_(True)
    if lengths is None:
        y, (hn, cn) = m(xd, (h0d, c0d))
    else:
        lens = torch.tensor(lengths)
        keep = torch.nonzero(lens > 0).flatten()          # packing refuses length 0
        bdim = 0 if batch_first else 1
        xs = xd.index_select(bdim, keep)
        packed = torch.nn.utils.rnn.pack_padded_sequence(xs, lens[keep], batch_first=batch_first,
                                                         enforce_sorted=False)
        ys, (hs, cs) = m(packed, (h0d[:, keep], c0d[:, keep]))
        ys, _ = torch.nn.utils.rnn.pad_packed_sequence(ys, batch_first=batch_first, total_length=T)
        y = torch.zeros(gy.shape, dtype=torch.float64).index_copy(bdim, keep, ys)
        hn = h0d.clone().index_copy(1, keep, hs)          # length 0: hn = h0, cn = c0
        cn = c0d.clone().index_copy(1, keep, cs)
    t = dict(weights)
    t.update(input=x, h0=h0, c0=c0, output=y.detach().float(), hn=hn.detach().float(), cn=cn.detach().float())
    if lengths is not None:
        t["lengths"] = torch.tensor(lengths, dtype=torch.int64)
    if not forward_only:
        loss = (y * gy.double()).sum() + (hn * ghn.double()).sum() + (cn * gcn.double()).sum()
        loss.backward()
        t.update(grad_output=gy, grad_hn=ghn, grad_cn=gcn, grad_input=xd.grad.float(),
                 grad_h0=h0d.grad.float(), grad_c0=c0d.grad.float())
        for k, p in m.named_parameters():
            t["grad." + k] = p.grad.float()
    meta = dict(format="lstm-fixture/1", input_size=str(I), hidden_size=str(H), num_layers=str(L),
                proj_size=str(proj), bidirectional=str(bidirectional).lower(),
                batch_first=str(batch_first).lower())
    return {k: v.contiguous() for k, v in t.items()}, meta


def make_option_case(name, I, H, L, B, T, bidirectional, proj, batch_first, lengths, bias, zero_state,
                     forward_only, scale, seed, min_clip_margin=1e-3, **options):
    """A cell-options case: draws like make_case, references from the NumPy oracle.
    Returns (tensors, meta, clip report)."""
    unknown = set(options) - set(OPTION_KEYS)
    if unknown:
        raise ValueError(f"{name}: unknown option(s) {sorted(unknown)}")
    cfg = LSTMConfig(I, H, num_layers=L, bias=bias, batch_first=batch_first, bidirectional=bidirectional,
                     proj_size=proj, **options).validate()
    # the engine reads clips and epsilon from the metadata as Float: compute with those values
    f32 = lambda v: float(np.float32(v))
    cfg32 = LSTMConfig(**{**cfg.__dict__, **{k: f32(getattr(cfg, k)) for k in
                                              ("layer_norm_eps", "activation_clip", "cell_clip", "proj_clip")}})
    g = torch.Generator().manual_seed(seed)
    D, Hout = cfg.D, cfg.Hout
    weights = {}
    for k, shape in cfg.weight_shapes().items():
        if k.startswith("layer_norm_weight"):
            w = torch.rand(shape, generator=g) + 0.5                      # gains in [0.5, 1.5)
        else:
            w = torch.rand(shape, generator=g) * 2 - 1
            if scale is not None and k.startswith(("weight_ih", "weight_hh", "bias_")):
                w = w * scale
        weights[k] = w.float().contiguous()
    x = torch.randn((B, T, I) if batch_first else (T, B, I), generator=g)
    h0 = torch.zeros(L * D, B, Hout) if zero_state else torch.randn(L * D, B, Hout, generator=g) * 0.5
    c0 = torch.zeros(L * D, B, H) if zero_state else torch.randn(L * D, B, H, generator=g) * 0.5
    gy = torch.randn((B, T, D * Hout) if batch_first else (T, B, D * Hout), generator=g)
    ghn = torch.randn(L * D, B, Hout, generator=g)
    gcn = torch.randn(L * D, B, H, generator=g)

    # float64 reference from the float32 values
    n64 = lambda t: t.double().numpy()
    y, hn, cn, tape = lstm_forward(cfg32, {k: n64(v) for k, v in weights.items()}, n64(x), n64(h0), n64(c0),
                                   lengths)
    clips = clip_report(tape)
    for site, r in clips.items():
        if r["margin"] < min_clip_margin:
            raise AssertionError(f"{name}: a value lies {r['margin']:.3g} from its {site} bound "
                                 f"(< {min_clip_margin}); give the case another seed")
    f32t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()
    t = dict(weights)
    t.update(input=x, h0=h0, c0=c0, output=f32t(y), hn=f32t(hn), cn=f32t(cn))
    if lengths is not None:
        t["lengths"] = torch.tensor(lengths, dtype=torch.int64)
    if not forward_only:
        grads = lstm_backward(tape, n64(gy), n64(ghn), n64(gcn))
        t.update(grad_output=gy, grad_hn=ghn, grad_cn=gcn, grad_input=f32t(grads["input"]),
                 grad_h0=f32t(grads["h0"]), grad_c0=f32t(grads["c0"]))
        for k in weights:
            t["grad." + k] = f32t(grads[k])
    return {k: v.contiguous() for k, v in t.items()}, cfg.metadata(), clips


def same_content(path, tensors, meta):
    """Whether the file at path already holds exactly these tensors and metadata (the
    safetensors writer orders the metadata keys differently from run to run, so an
    unchanged case is not rewritten: its bytes stay as committed)."""
    if not os.path.exists(path):
        return False
    try:
        with safe_open(path, "pt") as f:
            if f.metadata() != meta:
                return False
        old = load_file(path)
    except Exception:
        return False
    return set(old) == set(tensors) and all(
        old[k].dtype == v.dtype and old[k].shape == v.shape and torch.equal(old[k], v) for k, v in tensors.items())


def min_preactivation(t, L):
    """Smallest |gate pre-activation| over all layers and steps, in float64 (unidirectional,
    no projection, no lengths, sequence-major)."""
    d = {k: v.double() for k, v in t.items()}
    inp, smallest = d["input"], float("inf")
    for l in range(L):
        h, c, outs = d["h0"][l], d["c0"][l], []
        for s in range(inp.shape[0]):
            pre = (inp[s] @ d[f"weight_ih_l{l}"].T + h @ d[f"weight_hh_l{l}"].T
                   + d[f"bias_ih_l{l}"] + d[f"bias_hh_l{l}"])
            smallest = min(smallest, pre.abs().min().item())
            i, f, g, o = pre.chunk(4, 1)
            c = f.sigmoid() * c + i.sigmoid() * g.tanh()
            h = o.sigmoid() * c.tanh()
            outs.append(h)
        inp = torch.stack(outs)
    return smallest


def random_options(rng, cfg):
    """Cell options for a random case (scale and the option keys); reverse only when not
    bidirectional, proj_clip only with a projection."""
    o = dict(peephole=rng.random() < 0.5, cifg=rng.random() < 0.4, layer_norm=rng.random() < 0.5)
    if rng.random() < 0.3:
        o["layer_norm_eps"] = rng.choice([1e-3, 1e-2])
    if rng.random() < 0.5:
        o["activation_clip"] = rng.choice([1.0, 1.5, 2.0])
    if rng.random() < 0.5:
        o["cell_clip"] = rng.choice([0.5, 0.75, 1.0])
    if cfg["proj"] and rng.random() < 0.5:
        o["proj_clip"] = rng.choice([0.25, 0.3, 0.5])
    if not cfg["bidirectional"] and rng.random() < 0.3:
        o["reverse"] = True
    o = {k: v for k, v in o.items() if v is not False}
    if not o:
        o["peephole"] = True
    o["scale"] = rng.choice([1.0, 2.0, 3.0])
    return o


def random_case(rng):
    L = rng.randint(1, 3); T = rng.randint(1, 8); B = rng.randint(1, 6)
    H = rng.randint(1, 24); I = rng.randint(1, 20)
    proj = rng.choice([0, 0, rng.randint(1, H - 1)]) if H > 1 else 0
    lengths = None
    if rng.random() < 0.5:
        lengths = [rng.randint(0, T) for _ in range(B)]
    return dict(I=I, H=H, L=L, B=B, T=T, bidirectional=rng.random() < 0.5, proj=proj,
                batch_first=rng.random() < 0.3, lengths=lengths, bias=rng.random() < 0.8,
                zero_state=rng.random() < 0.2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "Tests", "LSTMKitTests", "Fixtures"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--random", type=int, default=0, help="write N random configurations instead of the standard set")
    ap.add_argument("--only", default="", help="comma-separated case names: write just these")
    ap.add_argument("--options", action="store_true", help="with --random: draw cell options too")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.random:
        rng = random.Random(a.seed)
        cases = {}
        for i in range(a.random):
            c = random_case(rng)
            if a.options:
                c.update(random_options(rng, c))
            cases[f"random-{a.seed}-{i:02d}"] = c
    else:
        cases = CASES
    only = set(filter(None, a.only.split(",")))
    unknown = only - set(cases)
    if unknown:
        ap.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    for i, (name, cfg) in enumerate(cases.items()):
        if only and name not in only:
            continue
        cfg = dict(cfg)
        seed, margin = a.seed * 1000 + cfg.pop("seed", i), cfg.pop("min_margin", None)
        for retry in range(50 if a.random else 1):    # a random draw may put a value at a clip bound
            try:
                tensors, meta, *clips = make_case(name, seed=seed + 100000 * retry, **cfg)
                break
            except AssertionError:
                if retry == (49 if a.random else 0):
                    raise
        if margin is not None:
            assert not (cfg.get("bidirectional") or cfg.get("proj") or cfg.get("lengths") or cfg.get("batch_first"))
            smallest = min_preactivation(tensors, cfg["L"])
            assert smallest >= margin, f"{name}: a gate pre-activation is {smallest:.3g} from 0 (< {margin})"
        path = os.path.join(a.out, name + ".safetensors")
        if same_content(path, tensors, meta):
            print(f"{path}: unchanged")
            continue
        save_file(tensors, path, metadata=meta)
        bite = "".join(f" [{k}: {r['fraction']:.0%} clipped, margin {r['margin']:.2g}]"
                       for k, r in (clips[0] if clips else {}).items())
        print(f"{path}: {cfg}{bite}")


if __name__ == "__main__":
    torch.set_default_dtype(torch.float32)
    main()
