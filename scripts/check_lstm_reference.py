#!/usr/bin/env python3
"""Self-checks of scripts/lstm_reference.py (the float64 NumPy oracle), all in float64:

  --torch   option-free configurations against torch.nn.LSTM (forward and autograd
            gradients), and a `reverse` LSTM against the second half of a bidirectional one
  --spec    every option configuration against an independent per-sequence PyTorch
            autograd implementation of the cell options (README "Cell options") (torch.nn.functional.layer_norm, clamp)
  --fd      the hand-written backward against central finite differences, every option
            alone and combined (asserting no clipped value lies near its bound)
  --onnx    against onnxruntime's ONNX LSTM (peepholes, input_forget, clip, reverse,
            bidirectional, sequence_lens, initial states) and onnxruntime's behaviour
            (which gates `clip` bounds, i = 1 - f, layout=1, padded outputs, length 0)
  --fixtures DIR  the cell-option fixtures in DIR (names, shapes, metadata) against the
            independent PyTorch implementation, in float64 and in float32 (the latter
            within the README's tolerances, as a float32 engine must be)

No flag runs --torch --spec --fd (and --onnx when onnxruntime is installed). Prints the
max abs difference of each comparison; exits 1 when one exceeds its tolerance.

  python3 scripts/check_lstm_reference.py [--torch] [--spec] [--fd] [--onnx] [--fixtures DIR]
"""
import argparse, os, sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstm_reference import LSTMConfig, lstm_forward, lstm_backward, loss, clip_report, random_weights

FAILURES = []


def report(label, diff, tol):
    ok = diff <= tol
    print(f"  {'ok  ' if ok else 'FAIL'} {label}: max abs diff {diff:.3g} (tol {tol:g})")
    if not ok:
        FAILURES.append(label)


def draw(cfg, seed, T, B, lengths=None, scale=1.0, state_scale=0.5):
    rng = np.random.default_rng(seed)
    w = random_weights(cfg, rng, scale)
    shape = (B, T, cfg.input_size) if cfg.batch_first else (T, B, cfg.input_size)
    x = rng.standard_normal(shape)
    LD = cfg.num_layers * cfg.D
    h0 = rng.standard_normal((LD, B, cfg.Hout)) * state_scale
    c0 = rng.standard_normal((LD, B, cfg.H)) * state_scale
    yshape = (B, T, cfg.D * cfg.Hout) if cfg.batch_first else (T, B, cfg.D * cfg.Hout)
    gy = rng.standard_normal(yshape)
    ghn = rng.standard_normal(h0.shape)
    gcn = rng.standard_normal(c0.shape)
    return w, x, h0, c0, lengths, gy, ghn, gcn


def max_diff(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max()) if a.size else 0.0


def compare_all(ours_fwd, ours_grads, ref_fwd, ref_grads):
    """Max abs diff over (output, hn, cn) and over every gradient."""
    f = max(max_diff(a, b) for a, b in zip(ours_fwd, ref_fwd))
    assert set(ours_grads) == set(ref_grads), set(ours_grads) ^ set(ref_grads)
    g = max(max_diff(ours_grads[k], ref_grads[k]) for k in ref_grads)
    return f, g


def oracle(cfg, w, x, h0, c0, lengths, gy, ghn, gcn):
    y, hn, cn, tape = lstm_forward(cfg, w, x, h0, c0, lengths)
    return (y, hn, cn), lstm_backward(tape, gy, ghn, gcn), tape


# ----------------------------------------------------------------------------------------
# a. torch.nn.LSTM
# ----------------------------------------------------------------------------------------

def torch_lstm(cfg, w, x, h0, c0, lengths, gy, ghn, gcn):
    """torch.nn.LSTM in float64 (packed sequences for lengths; length 0: hn = h0)."""
    import torch
    m = torch.nn.LSTM(cfg.input_size, cfg.hidden_size, num_layers=cfg.num_layers, bias=cfg.bias,
                      batch_first=cfg.batch_first, bidirectional=cfg.bidirectional,
                      proj_size=cfg.proj_size).double()
    m.load_state_dict({k: torch.tensor(v) for k, v in w.items()})
    xd, h0d, c0d = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    if lengths is None:
        y, (hn, cn) = m(xd, (h0d, c0d))
    else:
        lens = torch.tensor(lengths)
        keep = torch.nonzero(lens > 0).flatten()
        bdim = 0 if cfg.batch_first else 1
        packed = torch.nn.utils.rnn.pack_padded_sequence(xd.index_select(bdim, keep), lens[keep],
                                                         batch_first=cfg.batch_first, enforce_sorted=False)
        ys, (hs, cs) = m(packed, (h0d[:, keep], c0d[:, keep]))
        ys, _ = torch.nn.utils.rnn.pad_packed_sequence(ys, batch_first=cfg.batch_first,
                                                       total_length=x.shape[bdim ^ 1])
        y = torch.zeros(gy.shape, dtype=torch.float64).index_copy(bdim, keep, ys)
        hn = h0d.clone().index_copy(1, keep, hs)
        cn = c0d.clone().index_copy(1, keep, cs)
    L = (y * torch.tensor(gy)).sum() + (hn * torch.tensor(ghn)).sum() + (cn * torch.tensor(gcn)).sum()
    L.backward()
    grads = {k: p.grad.numpy() for k, p in m.named_parameters()}
    grads.update(input=xd.grad.numpy(), h0=h0d.grad.numpy(), c0=c0d.grad.numpy())
    return (y.detach().numpy(), hn.detach().numpy(), cn.detach().numpy()), grads


def check_torch():
    print("a. NumPy oracle vs torch.nn.LSTM (float64, forward and autograd gradients)")
    C = LSTMConfig
    cases = [
        ("basic", C(5, 7), 4, 3, None),
        ("projection", C(5, 6, proj_size=3), 4, 3, None),
        ("bidirectional", C(5, 6, bidirectional=True), 5, 3, None),
        ("layers-3", C(3, 4, num_layers=3), 4, 2, None),
        ("lengths (with 0)", C(4, 5, num_layers=2), 4, 4, [3, 0, 4, 1]),
        ("batch_first", C(4, 5, batch_first=True), 4, 3, None),
        ("no bias", C(5, 6, num_layers=2, bias=False), 4, 2, None),
        ("bi+proj+lengths+layers", C(7, 9, num_layers=2, bidirectional=True, proj_size=4), 5, 4, [5, 0, 2, 4]),
        ("everything", C(6, 11, num_layers=3, bidirectional=True, proj_size=5, batch_first=True, bias=False),
         6, 3, [2, 6, 0]),
        ("saturated x1e3", C(5, 8, num_layers=2, bidirectional=True), 4, 3, [4, 2, 3]),
    ]
    for name, cfg, T, B, lengths in cases:
        scale = 1e3 if name.startswith("saturated") else 1.0
        args = draw(cfg, 1, T, B, lengths, scale=scale)
        ours_f, ours_g, _ = oracle(cfg, *args)
        ref_f, ref_g = torch_lstm(cfg, *args)
        f, g = compare_all(ours_f, ours_g, ref_f, ref_g)
        report(f"{name}: forward", f, 1e-12)
        report(f"{name}: gradients", g, 1e-10 if scale == 1 else 1e-8)
    # a single reverse direction = the second half of a bidirectional layer
    for lengths in (None, [4, 0, 2]):
        cfg = C(4, 6, reverse=True, proj_size=3)
        bi = C(4, 6, bidirectional=True, proj_size=3)
        w, x, h0, c0, _, gy, ghn, gcn = draw(cfg, 2, 4, 3)
        wb = {k: v for k, v in random_weights(bi, np.random.default_rng(3)).items()}
        wb.update(w)                                 # the _reverse tensors are the same
        z = lambda a: np.concatenate([np.zeros_like(a), a], axis=0)
        (y, hn, cn), g, _ = oracle(cfg, w, x, h0, c0, lengths, gy, ghn, gcn)
        gyb = np.concatenate([np.zeros_like(gy), gy], axis=-1)
        (yb, hnb, cnb), gb = torch_lstm(bi, wb, x, z(h0), z(c0), lengths, gyb, z(ghn), z(gcn))
        f = max(max_diff(y, yb[..., 3:]), max_diff(hn, hnb[1:]), max_diff(cn, cnb[1:]))
        gd = max([max_diff(g["input"], gb["input"]), max_diff(g["h0"], gb["h0"][1:]),
                  max_diff(g["c0"], gb["c0"][1:])] + [max_diff(g[k], gb[k]) for k in w])
        tag = "reverse" + (" + lengths (with 0)" if lengths else "")
        report(f"{tag} vs torch bidirectional's reverse half: forward", f, 1e-12)
        report(f"{tag} vs torch bidirectional's reverse half: gradients", gd, 1e-10)


# ----------------------------------------------------------------------------------------
# Option configurations shared by --spec and --fd
# ----------------------------------------------------------------------------------------

def option_cases():
    C = LSTMConfig
    # name, cfg, T, B, lengths, weight scale
    return [
        ("plain", C(3, 4), 3, 2, None, 1.0),
        ("peephole", C(3, 4, peephole=True), 3, 2, None, 1.0),
        ("cifg", C(3, 4, cifg=True), 3, 2, None, 1.0),
        ("layer_norm", C(3, 4, layer_norm=True), 3, 2, None, 2.0),
        ("layer_norm eps=0.1 no bias", C(3, 4, layer_norm=True, layer_norm_eps=0.1, bias=False), 3, 2, None, 2.0),
        ("activation_clip", C(3, 4, activation_clip=1.0), 3, 2, None, 2.0),
        ("cell_clip", C(3, 4, cell_clip=0.5), 3, 2, None, 2.0),
        ("projection", C(3, 4, proj_size=3), 3, 2, None, 1.0),
        ("proj_clip", C(3, 4, proj_size=3, proj_clip=0.3), 3, 2, None, 1.5),
        ("reverse", C(3, 4, reverse=True), 3, 2, None, 1.0),
        ("reverse+lengths", C(3, 4, reverse=True, num_layers=2), 4, 3, [2, 0, 4], 1.0),
        ("cifg+peephole", C(3, 4, cifg=True, peephole=True), 3, 2, None, 1.0),
        ("peephole+layer_norm", C(3, 4, peephole=True, layer_norm=True), 3, 2, None, 2.0),
        ("clips (act+cell+proj)", C(3, 4, proj_size=3, activation_clip=1.0, cell_clip=0.5, proj_clip=0.3),
         3, 2, None, 2.0),
        ("cifg+peephole+layer_norm+reverse+lengths", C(3, 5, cifg=True, peephole=True, layer_norm=True, reverse=True),
         4, 3, [4, 1, 0], 2.0),
        ("all: peephole+LN+clips+proj, bi, 2 layers, lengths, batch_first",
         C(3, 5, num_layers=2, bidirectional=True, proj_size=3, peephole=True, layer_norm=True,
           activation_clip=1.0, cell_clip=0.6, proj_clip=0.3, batch_first=True), 4, 3, [4, 0, 2], 2.0),
        ("all with cifg, no bias, 3 layers",
         C(2, 4, num_layers=3, proj_size=2, peephole=True, cifg=True, layer_norm=True, bias=False,
           activation_clip=1.0, cell_clip=0.6, proj_clip=0.3), 3, 2, [3, 2], 2.0),
    ]


def clipped_draw(cfg, T, B, lengths, scale, margin, first_seed=100):
    """The first seed whose clipped values all lie at least `margin` from their bounds."""
    for seed in range(first_seed, first_seed + 500):
        args = draw(cfg, seed, T, B, lengths, scale=scale)
        _, _, _, tape = lstm_forward(cfg, *args[:5])
        rep = clip_report(tape)
        if all(r["margin"] >= margin for r in rep.values()):
            return seed, args, rep
    raise RuntimeError("no seed keeps the clipped values away from their bounds")


# ----------------------------------------------------------------------------------------
# b. finite differences
# ----------------------------------------------------------------------------------------

def check_fd():
    eps, margin = 1e-6, 1e-4
    print(f"b. hand backward vs central finite differences (step {eps:g}; every clipped value "
          f"at least {margin:g} from its bound)")
    for name, cfg, T, B, lengths, scale in option_cases():
        seed, args, rep = clipped_draw(cfg, T, B, lengths, scale, margin)
        w, x, h0, c0, lengths, gy, ghn, gcn = args
        (y, hn, cn), grads, _ = oracle(cfg, *args)

        def f():
            y, hn, cn, _ = lstm_forward(cfg, w, x, h0, c0, lengths)
            return loss(y, hn, cn, gy, ghn, gcn)

        worst = 0.0
        targets = dict(w, input=x, h0=h0, c0=c0)
        for k, arr in targets.items():
            num = np.zeros_like(arr)
            for idx in np.ndindex(arr.shape):
                keep = arr[idx]
                arr[idx] = keep + eps; up = f()
                arr[idx] = keep - eps; down = f()
                arr[idx] = keep
                num[idx] = (up - down) / (2 * eps)
            worst = max(worst, max_diff(grads[k], num))
        # the draw still keeps its margin (nothing was left perturbed)
        assert all(r["margin"] >= margin for r in clip_report(lstm_forward(cfg, w, x, h0, c0, lengths)[3]).values())
        bite = ", ".join(f"{k} clips {r['fraction']:.0%} (margin {r['margin']:.2g})" for k, r in rep.items())
        report(f"{name} [seed {seed}{'; ' + bite if bite else ''}]", worst, 1e-7)


# ----------------------------------------------------------------------------------------
# Independent per-sequence PyTorch autograd implementation of the cell options (README "Cell options")
# ----------------------------------------------------------------------------------------

def torch_spec(cfg, w, x, h0, c0, lengths, gy, ghn, gcn, dtype="float64"):
    """Forward and autograd gradients, each sequence run on its own over its valid steps
    (dtype "float32" imitates a float32 engine)."""
    import torch
    import torch.nn.functional as F
    dt = getattr(torch, dtype)
    W = {k: torch.tensor(v, dtype=dt, requires_grad=True) for k, v in w.items()}
    xd, h0d, c0d = (torch.tensor(a, dtype=dt, requires_grad=True) for a in (x, h0, c0))
    xs = xd.transpose(0, 1) if cfg.batch_first else xd        # [T, B, I]
    T, B, H = xs.shape[0], xs.shape[1], cfg.H
    lens = [T] * B if lengths is None else list(lengths)

    def cell(xt, h, c, s):
        pre = W["weight_ih" + s] @ xt + W["weight_hh" + s] @ h
        b = W["bias_ih" + s] + W["bias_hh" + s] if cfg.bias else None
        if b is not None and not cfg.layer_norm:
            pre = pre + b
        part = dict(zip(cfg.gates, pre.split(H)))
        bq = dict(zip(cfg.gates, b.split(H))) if b is not None else {}

        def z(q, v):
            if cfg.layer_norm:
                v = F.layer_norm(v, (H,), W[f"layer_norm_weight_{q}" + s], bq.get(q), cfg.layer_norm_eps)
            return v.clamp(-cfg.activation_clip, cfg.activation_clip) if cfg.activation_clip else v

        if cfg.peephole:
            if not cfg.cifg:
                part["i"] = part["i"] + W["weight_ci" + s] * c
            part["f"] = part["f"] + W["weight_cf" + s] * c
        f = torch.sigmoid(z("f", part["f"]))
        i = 1 - f if cfg.cifg else torch.sigmoid(z("i", part["i"]))
        c = f * c + i * torch.tanh(z("g", part["g"]))
        if cfg.cell_clip:
            c = c.clamp(-cfg.cell_clip, cfg.cell_clip)
        so = part["o"] + W["weight_co" + s] * c if cfg.peephole else part["o"]
        h = torch.sigmoid(z("o", so)) * torch.tanh(c)
        if cfg.proj_size:
            h = W["weight_hr" + s] @ h
            if cfg.proj_clip:
                h = h.clamp(-cfg.proj_clip, cfg.proj_clip)
        return h, c

    seqs = [xs[:lens[b], b] for b in range(B)]                 # each sequence on its own
    hn, cn = [[None] * B for _ in range(cfg.num_layers * cfg.D)], [[None] * B for _ in range(cfg.num_layers * cfg.D)]
    for l in range(cfg.num_layers):
        new = []
        for b in range(B):
            outs = []
            for d, sfx in enumerate(cfg.suffixes()):
                k, s = l * cfg.D + d, f"_l{l}{sfx}"
                seq = seqs[b].flip(0) if sfx == "_reverse" else seqs[b]
                h, c, hs = h0d[k, b], c0d[k, b], []
                for xt in seq:
                    h, c = cell(xt, h, c, s)
                    hs.append(h)
                hn[k][b], cn[k][b] = h, c
                o = torch.stack(hs) if hs else torch.zeros(0, cfg.Hout, dtype=dt)
                outs.append(o.flip(0) if sfx == "_reverse" else o)
            new.append(torch.cat(outs, -1))
        seqs = new
    y = torch.stack([torch.cat([s, torch.zeros(T - s.shape[0], s.shape[1], dtype=dt)]) for s in seqs], 1)
    if cfg.batch_first:
        y = y.transpose(0, 1)
    hn = torch.stack([torch.stack(r) for r in hn])
    cn = torch.stack([torch.stack(r) for r in cn])
    t = lambda a: torch.tensor(a, dtype=dt)
    L = (y * t(gy)).sum() + (hn * t(ghn)).sum() + (cn * t(gcn)).sum()
    L.backward()
    grads = {k: v.grad.numpy() if v.grad is not None else np.zeros(v.shape) for k, v in W.items()}
    grads.update(input=xd.grad.numpy(), h0=h0d.grad.numpy(), c0=c0d.grad.numpy())
    return (y.detach().numpy(), hn.detach().numpy(), cn.detach().numpy()), grads


def check_spec():
    print("d. NumPy oracle vs an independent per-sequence PyTorch autograd implementation of the cell options (README: Cell options)")
    for name, cfg, T, B, lengths, scale in option_cases():
        seed, args, _ = clipped_draw(cfg, T, B, lengths, scale, 1e-9)
        ours_f, ours_g, _ = oracle(cfg, *args)
        ref_f, ref_g = torch_spec(cfg, *args)
        f, g = compare_all(ours_f, ours_g, ref_f, ref_g)
        report(f"{name}: forward", f, 1e-12)
        report(f"{name}: gradients", g, 1e-10)


# ----------------------------------------------------------------------------------------
# c. onnxruntime
# ----------------------------------------------------------------------------------------

TORCH_TO_ONNX = [0, 3, 1, 2]           # ONNX gate order i, o, f, c from torch's i, f, g, o


def onnx_weights(cfg, w, junk, cifg_as="spec"):
    """W [D, 4H, I], R [D, 4H, H], B [D, 8H], P [D, 3H] (i, o, f) from one layer's weights.
    CIFG, cifg_as="spec": our f rows in ONNX's f rows, `junk` draws in the i rows and P_i
    (right if the runtime computes i = 1 - f). cifg_as="ort": onnxruntime computes
    f = 1 - sigma(z_i) instead, so the i rows (biases, P_i) get MINUS our f rows: then
    sigma(-z_f) = 1 - f is its i and 1 - (1 - f) = f its f; junk goes in the f rows and P_f.
    (clamp(-z) = -clamp(z), so this holds with `clip` too.)"""
    H = cfg.H
    Ws, Rs, Bs, Ps = [], [], [], []
    for sfx in cfg.suffixes():
        s = f"_l0{sfx}"

        def onnx_rows(a):
            parts = dict(zip(cfg.gates, np.split(a, cfg.G)))
            if cfg.cifg and cifg_as == "spec":
                parts["i"] = junk.standard_normal(parts["f"].shape) * 3
            elif cfg.cifg:
                parts["i"], parts["f"] = -parts["f"], junk.standard_normal(parts["f"].shape) * 3
            return np.concatenate([parts[q] for q in ("i", "o", "f", "g")])

        Ws.append(onnx_rows(w["weight_ih" + s]))
        Rs.append(onnx_rows(w["weight_hh" + s]))
        if cfg.bias:
            Bs.append(np.concatenate([onnx_rows(w["bias_ih" + s]), onnx_rows(w["bias_hh" + s])]))
        if cfg.peephole:
            pi, pf = (w["weight_ci" + s] if not cfg.cifg else junk.standard_normal(H) * 3), w["weight_cf" + s]
            if cfg.cifg and cifg_as == "ort":
                pi, pf = -pf, pi
            Ps.append(np.concatenate([pi, w["weight_co" + s], pf]))
    st = lambda l: np.stack(l) if l else None
    return st(Ws), st(Rs), st(Bs), st(Ps)


def onnx_direction(cfg):
    return "bidirectional" if cfg.bidirectional else ("reverse" if cfg.reverse else "forward")


def run_onnx(cfg, w, x, h0, c0, lengths, junk_seed=0, clip=None, input_forget=None, layout=0, dtype=np.float64,
             cifg_as="spec"):
    """Builds and runs one ONNX LSTM node (opset 14); returns (Y [T, B, D*H], Y_h, Y_c)."""
    import onnx
    from onnx import helper, TensorProto
    import onnxruntime as ort
    W, R, B, P = onnx_weights(cfg, w, np.random.default_rng(junk_seed), cifg_as)
    T, Bn = x.shape[:2]
    D, H = cfg.D, cfg.H
    feeds = {"X": x, "W": W, "R": R}
    if B is not None:
        feeds["B"] = B
    if lengths is not None:
        feeds["sequence_lens"] = np.asarray(lengths, dtype=np.int32)
    feeds["initial_h"], feeds["initial_c"] = h0, c0
    if P is not None:
        feeds["P"] = P
    if layout == 1:
        feeds["X"] = x.transpose(1, 0, 2)
        feeds["initial_h"], feeds["initial_c"] = h0.transpose(1, 0, 2), c0.transpose(1, 0, 2)
    feeds = {k: (v if k == "sequence_lens" else np.ascontiguousarray(v, dtype=dtype)) for k, v in feeds.items()}
    order = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
    names = [n if n in feeds else "" for n in order]
    while names and names[-1] == "":
        names.pop()
    attrs = dict(hidden_size=H, direction=onnx_direction(cfg), layout=layout)
    if clip is not None:
        attrs["clip"] = float(clip)
    if input_forget is not None:
        attrs["input_forget"] = input_forget
    node = helper.make_node("LSTM", names, ["Y", "Y_h", "Y_c"], **attrs)
    et = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info(k, TensorProto.INT32 if k == "sequence_lens" else et, list(v.shape))
              for k, v in feeds.items()]
    shapes = ([[Bn, T, D, H], [Bn, D, H], [Bn, D, H]] if layout == 1 else [[T, D, Bn, H], [D, Bn, H], [D, Bn, H]])
    outputs = [helper.make_tensor_value_info(n, et, sh) for n, sh in zip(("Y", "Y_h", "Y_c"), shapes)]
    model = helper.make_model(helper.make_graph([node], "lstm", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    Y, Yh, Yc = sess.run(None, feeds)
    if layout == 1:                                   # Y [B, T, D, H], Y_h [B, D, H]
        Y, Yh, Yc = Y.transpose(1, 0, 2, 3), Yh.transpose(1, 0, 2), Yc.transpose(1, 0, 2)
    return Y.transpose(0, 2, 1, 3).reshape(T, Bn, D * H), Yh, Yc


def clip_variant(cfg, w, x, h0, c0, clip, clipped, clip_c_for_h=False):
    """One unidirectional layer, no lengths: `clip` applied to the pre-activations of the
    gates in `clipped` (and, if clip_c_for_h, to c before tanh(c) in h). Returns Y [T, B, H]."""
    s = "_l0"
    b = w["bias_ih" + s] + w["bias_hh" + s]
    h, c, ys = h0[0], c0[0], []
    cl = lambda q, v: np.clip(v, -clip, clip) if q in clipped else v
    sig = lambda v: 1 / (1 + np.exp(-v))
    for xt in x:
        pre = xt @ w["weight_ih" + s].T + h @ w["weight_hh" + s].T + b
        i, f, g, o = np.split(pre, 4, axis=1)
        i, f, g, o = sig(cl("i", i)), sig(cl("f", f)), np.tanh(cl("g", g)), sig(cl("o", o))
        c = f * c + i * g
        h = o * np.tanh(np.clip(c, -clip, clip) if clip_c_for_h else c)
        ys.append(h)
    return np.stack(ys)


def check_onnx():
    try:
        import onnx, onnxruntime as ort
    except ImportError as e:
        print(f"c. onnxruntime check skipped: {e} (pip install onnx onnxruntime)")
        return
    ort.set_default_logger_severity(4)       # the refusals probed below are expected: no log noise
    print(f"c. NumPy oracle vs onnxruntime {ort.__version__} (onnx {onnx.__version__}, ONNX LSTM opset 14)")
    dtype = np.float64
    try:
        C0 = LSTMConfig(3, 4)
        a = draw(C0, 0, 2, 1)
        run_onnx(C0, a[0], a[1], a[2], a[3], None)
    except Exception as e:
        print(f"  onnxruntime refuses a double LSTM ({type(e).__name__}: {str(e).strip().splitlines()[0][:200]}); "
              "using float32 (inputs rounded to float32 first, so only ORT's float32 arithmetic differs)")
        dtype = np.float32
    tol = 1e-12 if dtype == np.float64 else 2e-6
    C = LSTMConfig
    cases = [
        # name, cfg, lengths, onnx attrs
        ("plain forward", C(4, 6), None, {}),
        ("direction=reverse", C(4, 6, reverse=True), None, {}),
        ("direction=bidirectional", C(4, 6, bidirectional=True), None, {}),
        ("sequence_lens, forward", C(4, 6), [5, 2, 4], {}),
        ("sequence_lens, reverse", C(4, 6, reverse=True), [5, 2, 4], {}),
        ("sequence_lens, bidirectional", C(4, 6, bidirectional=True), [5, 2, 4], {}),
        ("P (peepholes)", C(4, 6, peephole=True), None, {}),
        ("P, bidirectional + sequence_lens", C(4, 6, peephole=True, bidirectional=True), [3, 5, 1], {}),
        ("input_forget=1 (CIFG)", C(4, 6, cifg=True), None, dict(input_forget=1)),
        ("input_forget=1 + P, reverse + sequence_lens", C(4, 6, cifg=True, peephole=True, reverse=True),
         [5, 2, 4], dict(input_forget=1)),
        ("clip=1.0 (activation clip)", C(4, 6, activation_clip=1.0), None, dict(clip=1.0)),
        ("clip=0.5 + P + input_forget, bidirectional + sequence_lens",
         C(4, 6, activation_clip=0.5, peephole=True, cifg=True, bidirectional=True), [5, 3, 1],
         dict(clip=0.5, input_forget=1)),
        ("no B (no bias)", C(4, 6, bias=False, peephole=True), None, {}),
    ]
    for name, cfg, lengths, attrs in cases:
        scale = 2.0 if "clip" in attrs else 1.0
        w, x, h0, c0, _, _, _, _ = draw(cfg, 7, 5, 3, scale=scale)
        y, hn, cn, tape = lstm_forward(cfg, w, x, h0, c0, lengths)
        Y, Yh, Yc = run_onnx(cfg, w, x, h0, c0, lengths, dtype=dtype, **attrs)
        d = max(max_diff(y, Y), max_diff(hn, Yh), max_diff(cn, Yc))
        extra = ""
        if "clip" in attrs:
            extra += f"; {clip_report(tape)['activation_clip']['fraction']:.0%} of gate inputs clipped"
        if cfg.cifg:
            # LSTMCellOptions' mapping (i = 1 - f: ONNX i rows unused) against onnxruntime
            Y2, Yh2, Yc2 = run_onnx(cfg, w, x, h0, c0, lengths, junk_seed=1, dtype=dtype, **attrs)
            print(f"  info {name}, spec mapping (f rows = our f, junk in i rows/P_i): ORT differs from the "
                  f"spec by {d:.3g}; other junk in the i rows changes ORT's Y by "
                  f"{max(max_diff(Y, Y2), max_diff(Yh, Yh2)):.3g} (so ORT does not ignore them)")
            # onnxruntime's convention f = 1 - i: i rows = -(our f rows), junk in the f rows
            Y, Yh, Yc = run_onnx(cfg, w, x, h0, c0, lengths, dtype=dtype, cifg_as="ort", **attrs)
            Y2, Yh2, _ = run_onnx(cfg, w, x, h0, c0, lengths, junk_seed=1, dtype=dtype, cifg_as="ort", **attrs)
            d = max(max_diff(y, Y), max_diff(hn, Yh), max_diff(cn, Yc))
            name += (f" with ORT's f = 1 - i (i rows = -our f rows; other junk in ORT's f rows/P_f "
                     f"changes Y by {max(max_diff(Y, Y2), max_diff(Yh, Yh2)):.3g})")
        report(f"{name}{extra}", d, tol)
        if lengths is not None:
            T = x.shape[0]
            pad = [Y[t, b] for b in range(len(lengths)) for t in range(lengths[b], T)]
            print(f"       padded steps of Y: max |Y| = {max(np.abs(p).max() for p in pad):.3g} "
                  f"({'exactly 0' if all((p == 0).all() for p in pad) else 'NOT 0'})")

    # Which pre-activations does onnxruntime's `clip` bound?
    print("  which gates does onnxruntime's clip bound? (max abs diff of ORT's Y to each variant)")
    cfg = C(4, 6)
    w, x, h0, c0, *_ = draw(cfg, 11, 6, 3, scale=3.0, state_scale=2.0)
    clip = 0.7
    Y, _, _ = run_onnx(cfg, w, x, h0, c0, None, dtype=dtype, clip=clip)
    import itertools
    results = []
    for n in range(5):
        for gates in itertools.combinations("ifgo", n):
            for ch in (False, True):
                v = clip_variant(cfg, w, x, h0, c0, clip, set(gates), ch)
                results.append((max_diff(v, Y), "".join(gates) or "none", ch))
    results.sort()
    for d, gates, ch in results[:4]:
        print(f"       clip on gates {{{','.join(gates)}}}{' and on c inside tanh(c)' if ch else ''}: {d:.3g}")
    best = results[0]
    print(f"  => onnxruntime clips the inputs of gates {{{','.join(best[1])}}}"
          f"{' and c before tanh(c)' if best[2] else ', not c before tanh(c)'} (max diff {best[0]:.3g})")
    report("clip semantics = spec (all four gates i, f, g, o; c not clipped)",
           max_diff(clip_variant(cfg, w, x, h0, c0, clip, set("ifgo")), Y), tol)

    # layout=1 (batch-major)
    cfg = C(4, 6, bidirectional=True)
    w, x, h0, c0, *_ = draw(cfg, 12, 5, 3)
    y, hn, cn, _ = lstm_forward(cfg, w, x, h0, c0, [5, 2, 4])
    try:
        Y, Yh, Yc = run_onnx(cfg, w, x, h0, c0, [5, 2, 4], dtype=dtype, layout=1)
        print(f"  layout=1 accepted: max abs diff {max(max_diff(y, Y), max_diff(hn, Yh), max_diff(cn, Yc)):.3g}")
    except Exception as e:
        msg = str(e).strip().splitlines()[0][:300]
        print(f"  layout=1 refused by onnxruntime: {type(e).__name__}: {msg}")

    # sequence length 0
    cfg = C(4, 6, bidirectional=True)
    w, x, h0, c0, *_ = draw(cfg, 13, 4, 3)
    y, hn, cn, _ = lstm_forward(cfg, w, x, h0, c0, [4, 0, 2])
    try:
        Y, Yh, Yc = run_onnx(cfg, w, x, h0, c0, [4, 0, 2], dtype=dtype)
        d_valid = max(max_diff(np.delete(Y, 1, 1), np.delete(y, 1, 1)), max_diff(np.delete(Yh, 1, 1), np.delete(hn, 1, 1)),
                      max_diff(np.delete(Yc, 1, 1), np.delete(cn, 1, 1)))
        print(f"  sequence_lens with a 0 accepted: the other sequences differ from the oracle by {d_valid:.3g}; "
              f"the empty one: max |Y| {np.abs(Y[:, 1]).max():.3g}, max |Y_h| {np.abs(Yh[:, 1]).max():.3g}, "
              f"max |Y_c| {np.abs(Yc[:, 1]).max():.3g}; LSTMCellOptions' hn = h0, cn = c0 differ from ORT's by "
              f"{max_diff(Yh[:, 1], h0[:, 1]):.3g} and {max_diff(Yc[:, 1], c0[:, 1]):.3g}")
    except Exception as e:
        print(f"  sequence_lens with a 0 refused: {type(e).__name__}: {str(e).strip().splitlines()[0][:300]}")


def check_fixtures(folder):
    """Every fixture with a cell option in `folder`: its stored references against the
    independent PyTorch implementation of the cell options (README "Cell options"), in float64 (the stored float32 values
    must be its values rounded) and in float32 (a float32 engine must pass the README's
    tolerances: atol 1e-5 + rtol 1e-4 for output/hn/cn, atol 1e-4 + rtol 1e-3 for gradients).
    Also checks the names, shapes and metadata against the spec."""
    from safetensors.numpy import load_file
    from safetensors import safe_open
    import glob
    print(f"e. cell-option fixtures in {folder} against the independent PyTorch implementation")
    option_keys = ("peephole", "cifg", "layer_norm", "layer_norm_eps", "activation_clip", "cell_clip",
                   "proj_clip", "reverse")
    defaults = LSTMConfig(1, 1)
    n = 0
    for path in sorted(glob.glob(os.path.join(folder, "*.safetensors"))):
        with safe_open(path, "np") as fh:
            meta = fh.metadata()
        if not any(k in meta for k in option_keys):
            continue
        n += 1
        name = os.path.basename(path)
        t = load_file(path)
        cfg = LSTMConfig.from_metadata(meta, bias=any(k.startswith("bias_") for k in t))
        # metadata: option keys only when not default, and exactly what the config writes
        assert meta == cfg.metadata(), (name, meta, cfg.metadata())
        assert all(getattr(cfg, k) != getattr(defaults, k) for k in meta if k in option_keys), name
        shapes = cfg.weight_shapes()
        weight_names = [k for k in t if not k.startswith("grad") and k not in
                        ("input", "h0", "c0", "lengths", "output", "hn", "cn")]
        assert set(weight_names) == set(shapes), (name, set(weight_names) ^ set(shapes))
        assert all(t[k].shape == shapes[k] and t[k].dtype == np.float32 for k in shapes), name
        forward_only = "grad_output" not in t
        if not forward_only:
            assert {k[5:] for k in t if k.startswith("grad.")} == set(shapes), name
        f32 = lambda v: float(np.float32(v))
        cfg = LSTMConfig(**{**cfg.__dict__, **{k: f32(getattr(cfg, k)) for k in
                                                ("layer_norm_eps", "activation_clip", "cell_clip", "proj_clip")}})
        w = {k: t[k] for k in shapes}
        lengths = t.get("lengths")
        zeros = lambda k, like: t.get(k, np.zeros_like(t[like]))
        args = (cfg, w, t["input"], t["h0"], t["c0"], None if lengths is None else [int(v) for v in lengths],
                zeros("grad_output", "output"), zeros("grad_hn", "hn"), zeros("grad_cn", "cn"))
        refs = dict(output=t["output"], hn=t["hn"], cn=t["cn"])
        if not forward_only:
            refs.update(grad_input=t["grad_input"], grad_h0=t["grad_h0"], grad_c0=t["grad_c0"])
            refs.update({"grad." + k: t["grad." + k] for k in shapes})
        for dtype in ("float64", "float32"):
            (y, hn, cn), g = torch_spec(*args, dtype=dtype)
            ours = dict(output=y, hn=hn, cn=cn, grad_input=g["input"], grad_h0=g["h0"], grad_c0=g["c0"])
            ours.update({"grad." + k: g[k] for k in shapes})
            worst, excess = 0.0, 0.0
            for k, ref in refs.items():
                ref = ref.astype(np.float64)
                d = np.abs(ours[k].astype(np.float64) - ref)
                if d.size:
                    worst = max(worst, float(d.max()))
                    atol, rtol = (1e-5, 1e-4) if k in ("output", "hn", "cn") else (1e-4, 1e-3)
                    excess = max(excess, float((d / (atol + rtol * np.abs(ref))).max()))
            kind = " (forward only)" if forward_only else ""
            if dtype == "float64":
                report(f"{name}{kind}: float64 spec vs stored references", worst, 1e-6)
            else:
                ok = excess <= 1
                print(f"  {'ok  ' if ok else 'FAIL'} {name}{kind}: float32 spec vs stored references: max abs "
                      f"diff {worst:.3g}, worst |diff| / (atol + rtol|ref|) {excess:.3g} (must be <= 1)")
                if not ok:
                    FAILURES.append(name + " float32")
    print(f"  {n} cell-option fixture(s) checked")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in ("torch", "spec", "fd", "onnx"):
        ap.add_argument("--" + f, action="store_true")
    ap.add_argument("--fixtures", metavar="DIR", help="check the cell-option fixtures in DIR")
    a = ap.parse_args()
    if not (a.torch or a.spec or a.fd or a.onnx or a.fixtures):
        a.torch = a.spec = a.fd = True
        try:
            import onnxruntime  # noqa: F401  (only whether it is installed)
            a.onnx = True
        except ImportError:
            print("(onnxruntime not installed: --onnx skipped)")
    np.seterr(over="raise", invalid="raise")
    if a.torch:
        check_torch()
    if a.spec:
        check_spec()
    if a.fd:
        check_fd()
    if a.onnx:
        check_onnx()
    if a.fixtures:
        check_fixtures(a.fixtures)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed: {', '.join(FAILURES)}")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
