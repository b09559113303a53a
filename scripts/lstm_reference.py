"""A float64 NumPy oracle for lstm-gpu's LSTM with every cell option (see docs/cell-options.md
and LSTMCellOptions.swift: peepholes, coupled input-forget gate (CIFG), layer normalisation, activation / cell /
projection clipping, a single reverse direction), forward and a hand-written backward
(backpropagation through time).

Without options it is exactly torch.nn.LSTM (layers, bidirectional, projection, batch_first,
bias or not, per-sequence lengths with packed-sequence semantics); dropout is not modelled.

    cfg = LSTMConfig(input_size=5, hidden_size=7, peephole=True, cell_clip=0.75)
    weights = {name: array}          # names and shapes: cfg.weight_shapes()
    output, hn, cn, tape = lstm_forward(cfg, weights, x, h0, c0, lengths=None)
    grads = lstm_backward(tape, grad_output, grad_hn, grad_cn)
    # grads["input"], grads["h0"], grads["c0"], grads[weight name]: gradients of
    # loss = sum(output*grad_output) + sum(hn*grad_hn) + sum(cn*grad_cn)

Shapes: x [T, B, I] ([B, T, I] if batch_first), h0 [L*D, B, Hout], c0 [L*D, B, H],
lengths [B] (ints, 0..T; None = all T), output [T, B, D*Hout] (batch_first likewise).

One step of one sequence (c_prev, h_prev: the state before the step, x: the input row;
G = 4 gates i, f, g, o, or 3 gates f, g, o with CIFG):
    s_q = W_ih,q x + W_hh,q h_prev  (+ b_ih,q + b_hh,q when there is no layer norm)
    peepholes:  s_i += p_i * c_prev ;  s_f += p_f * c_prev
    layer norm: z_q = gamma_q * (s_q - mean(s_q)) / sqrt(var(s_q) + eps) + b_ih,q + b_hh,q
    else        z_q = s_q
    activation clip a > 0: z_q = clamp(z_q, -a, a)
    f = sigmoid(z_f); g = tanh(z_g); i = sigmoid(z_i), or i = 1 - f with CIFG
    c = f * c_prev + i * g ; cell clip: c = clamp(c, -cc, cc)
    s_o (+ p_o * c) -> layer norm, bias, clip as above -> o = sigmoid(z_o)
    m = o * tanh(c) ; h = m, or h = clamp(W_hr m, -pc, pc) with projection (pc = 0: no clamp)
Gradients through a clamp pass where -bound <= value <= bound (inclusive, as torch.clamp)
and are 0 outside.
"""
from dataclasses import MISSING, dataclass, fields
import numpy as np


# ----------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------

@dataclass
class LSTMConfig:
    """Field names are the fixtures' metadata keys."""
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    bidirectional: bool = False
    proj_size: int = 0
    peephole: bool = False
    cifg: bool = False
    layer_norm: bool = False
    layer_norm_eps: float = 1e-5
    activation_clip: float = 0.0
    cell_clip: float = 0.0
    proj_clip: float = 0.0
    reverse: bool = False

    def validate(self):
        """Raises ValueError for the combinations LSTMConfiguration refuses."""
        if self.input_size < 1 or self.hidden_size < 1 or self.num_layers < 1:
            raise ValueError("sizes must be positive")
        if self.proj_size < 0 or self.proj_size >= self.hidden_size and self.proj_size != 0:
            raise ValueError("proj_size must be 0 or in 1..hidden_size-1 (as torch.nn.LSTM)")
        if self.reverse and self.bidirectional:
            raise ValueError("reverse is refused with bidirectional")
        if self.proj_clip != 0 and self.proj_size == 0:
            raise ValueError("proj_clip needs proj_size > 0")
        for name in ("activation_clip", "cell_clip", "proj_clip"):
            v = getattr(self, name)
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be finite and >= 0")
        if not np.isfinite(self.layer_norm_eps) or self.layer_norm_eps <= 0:
            raise ValueError("layer_norm_eps must be finite and > 0")
        return self

    # shape letters
    @property
    def H(self): return self.hidden_size
    @property
    def Hout(self): return self.proj_size or self.hidden_size
    @property
    def D(self): return 2 if self.bidirectional else 1
    @property
    def gates(self):
        """Gates with weights, in row order."""
        return ("f", "g", "o") if self.cifg else ("i", "f", "g", "o")
    @property
    def G(self): return len(self.gates)

    def suffixes(self):
        """Weight-name suffix of each direction; "_reverse" reads the sequence backwards."""
        if self.bidirectional:
            return ["", "_reverse"]
        return ["_reverse"] if self.reverse else [""]

    def layer_input_size(self, l):
        return self.input_size if l == 0 else self.D * self.Hout

    def weight_shapes(self):
        """{name: shape} in state_dict order (per layer and direction)."""
        H, G = self.H, self.G
        shapes = {}
        for l in range(self.num_layers):
            for sfx in self.suffixes():
                s = f"_l{l}{sfx}"
                shapes["weight_ih" + s] = (G * H, self.layer_input_size(l))
                shapes["weight_hh" + s] = (G * H, self.Hout)
                if self.bias:
                    shapes["bias_ih" + s] = (G * H,)
                    shapes["bias_hh" + s] = (G * H,)
                if self.proj_size:
                    shapes["weight_hr" + s] = (self.proj_size, H)
                if self.peephole:
                    for q in (("f", "o") if self.cifg else ("i", "f", "o")):
                        shapes[f"weight_c{q}" + s] = (H,)
                if self.layer_norm:
                    for q in self.gates:
                        shapes[f"layer_norm_weight_{q}" + s] = (H,)
        return shapes

    def metadata(self):
        """Fixture metadata: the torch.nn.LSTM keys always, the option keys when not default."""
        b = lambda v: "true" if v else "false"
        meta = dict(format="lstm-fixture/1", input_size=str(self.input_size),
                    hidden_size=str(self.hidden_size), num_layers=str(self.num_layers),
                    proj_size=str(self.proj_size), bidirectional=b(self.bidirectional),
                    batch_first=b(self.batch_first))
        default = LSTMConfig(1, 1)
        for name in ("peephole", "cifg", "layer_norm", "layer_norm_eps", "activation_clip",
                     "cell_clip", "proj_clip", "reverse"):
            v = getattr(self, name)
            if v != getattr(default, name):
                meta[name] = b(v) if isinstance(v, bool) else repr(float(v))
        return meta

    @classmethod
    def from_metadata(cls, meta, bias=True):
        """The configuration a fixture describes (bias: whether it holds bias tensors)."""
        kw = dict(bias=bias)
        for f in fields(cls):
            if f.name in meta and f.name != "bias":
                kind = int if f.default is MISSING else type(f.default)
                v = meta[f.name]
                kw[f.name] = (v == "true") if kind is bool else kind(v)
        return cls(**kw).validate()


# ----------------------------------------------------------------------------------------
# Elementary functions (each with its backward)
# ----------------------------------------------------------------------------------------

def sigmoid(z):
    """sigma(z) = 1 / (1 + exp(-z)), written to stay finite for any z."""
    return np.exp(-np.logaddexp(0.0, -z))


def clamp(v, bound):
    """clamp(v, -bound, bound); bound 0 means no clamp. Returns (value, pass mask): the
    gradient passes where -bound <= v <= bound (inclusive, as torch.clamp)."""
    if bound == 0:
        return v, None
    keep = (v >= -bound) & (v <= bound)
    return np.clip(v, -bound, bound), keep


def clamp_backward(dv, keep):
    return dv if keep is None else dv * keep


def layer_norm(s, gamma, eps):
    """y = gamma * n, n = (s - mean(s)) / sqrt(var(s) + eps), over the last axis (H units),
    var biased. Returns (y, (n, inv_std, gamma))."""
    mu = s.mean(axis=-1, keepdims=True)
    var = ((s - mu) ** 2).mean(axis=-1, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    n = (s - mu) * inv_std
    return gamma * n, (n, inv_std, gamma)


def layer_norm_backward(dy, cache):
    """ds = inv_std * (dn - mean(dn) - n * mean(dn * n)), dn = dy * gamma; dgamma = sum(dy * n)."""
    n, inv_std, gamma = cache
    dn = dy * gamma
    ds = inv_std * (dn - dn.mean(axis=-1, keepdims=True) - n * (dn * n).mean(axis=-1, keepdims=True))
    dgamma = (dy * n).sum(axis=0)
    return ds, dgamma


# ----------------------------------------------------------------------------------------
# One step (all B rows at once; each row is one sequence)
# ----------------------------------------------------------------------------------------

def gate_sums(x, h_prev, w, cfg):
    """s_q = W_ih,q x + W_hh,q h_prev (+ b_ih,q + b_hh,q without layer norm); {q: [B, H]}."""
    s = x @ w["W_ih"].T + h_prev @ w["W_hh"].T
    if w["b"] is not None and not cfg.layer_norm:
        s = s + w["b"]
    H = cfg.H
    return {q: s[:, k * H:(k + 1) * H] for k, q in enumerate(cfg.gates)}


def gate_preactivation(s_q, q, w, cfg):
    """z_q = clamp(LN_q(s_q) + b_q or s_q, activation clip). Returns (z_q, cache)."""
    ln = None
    if cfg.layer_norm:
        y, ln = layer_norm(s_q, w["gamma"][q], cfg.layer_norm_eps)
        z = y + w["b_q"][q] if w["b"] is not None else y
    else:
        z = s_q
    z_clamped, keep = clamp(z, cfg.activation_clip)
    return z_clamped, dict(ln=ln, keep=keep, raw=z)


def gate_preactivation_backward(dz, q, cache, w, cfg, grads):
    """The gradient of s_q from that of z_q (accumulating gamma_q and bias gradients)."""
    dz = clamp_backward(dz, cache["keep"])
    if not cfg.layer_norm:
        return dz                               # biases (if any) are inside s: handled there
    if w["b"] is not None:
        grads["b"][w["rows"][q]] += dz.sum(axis=0)
    ds, dgamma = layer_norm_backward(dz, cache["ln"])
    grads["gamma"][q] += dgamma
    return ds


def cell_step(x, h_prev, c_prev, w, cfg):
    """One LSTM step. Returns (h, c, cache)."""
    s = gate_sums(x, h_prev, w, cfg)
    # peepholes on the input and forget gates read the previous cell
    if cfg.peephole:
        if not cfg.cifg:
            s["i"] = s["i"] + w["p"]["i"] * c_prev
        s["f"] = s["f"] + w["p"]["f"] * c_prev
    z, zc = {}, {}
    for q in [q for q in cfg.gates if q != "o"]:
        z[q], zc[q] = gate_preactivation(s[q], q, w, cfg)
    f = sigmoid(z["f"])
    g = np.tanh(z["g"])
    i = 1.0 - f if cfg.cifg else sigmoid(z["i"])
    # c = f * c_prev + i * g, then the cell clip
    c_raw = f * c_prev + i * g
    c, c_keep = clamp(c_raw, cfg.cell_clip)
    # the output gate reads the new (clipped) cell through its peephole
    s_o = s["o"] + w["p"]["o"] * c if cfg.peephole else s["o"]
    z["o"], zc["o"] = gate_preactivation(s_o, "o", w, cfg)
    o = sigmoid(z["o"])
    # m = o * tanh(c); h = m, or clamp(W_hr m, proj clip)
    tc = np.tanh(c)
    m = o * tc
    h_keep, h_raw = None, None
    if w["W_hr"] is not None:
        h_raw = m @ w["W_hr"].T
        h, h_keep = clamp(h_raw, cfg.proj_clip)
    else:
        h = m
    cache = dict(x=x, h_prev=h_prev, c_prev=c_prev, zc=zc, i=i, f=f, g=g, o=o, c=c, c_raw=c_raw,
                 c_keep=c_keep, tc=tc, m=m, h_raw=h_raw, h_keep=h_keep)
    return h, c, cache


def cell_step_backward(dh, dc, cache, w, cfg, grads):
    """Backward of cell_step: from dL/dh and dL/dc of this step's outputs, accumulates the
    weight gradients into grads and returns (dx, dh_prev, dc_prev)."""
    C = cache
    # h = clamp(W_hr m) or m
    if w["W_hr"] is not None:
        dh = clamp_backward(dh, C["h_keep"])
        grads["W_hr"] += dh.T @ C["m"]
        dm = dh @ w["W_hr"]
    else:
        dm = dh
    # m = o * tanh(c)
    do = dm * C["tc"]
    dc = dc + dm * C["o"] * (1.0 - C["tc"] ** 2)
    # o = sigmoid(z_o), z_o from s_o = s["o"] (+ p_o * c)
    ds = {}
    ds["o"] = gate_preactivation_backward(do * C["o"] * (1.0 - C["o"]), "o", C["zc"]["o"], w, cfg, grads)
    if cfg.peephole:
        grads["p"]["o"] += (ds["o"] * C["c"]).sum(axis=0)
        dc = dc + ds["o"] * w["p"]["o"]
    # c = clamp(f * c_prev + i * g)
    dc = clamp_backward(dc, C["c_keep"])
    df = dc * C["c_prev"]
    di = dc * C["g"]
    dg = dc * C["i"]
    dc_prev = dc * C["f"]
    if cfg.cifg:
        df = df - di                            # i = 1 - f
    # activations, then clamp / layer norm / bias
    ds["f"] = gate_preactivation_backward(df * C["f"] * (1.0 - C["f"]), "f", C["zc"]["f"], w, cfg, grads)
    ds["g"] = gate_preactivation_backward(dg * (1.0 - C["g"] ** 2), "g", C["zc"]["g"], w, cfg, grads)
    if not cfg.cifg:
        ds["i"] = gate_preactivation_backward(di * C["i"] * (1.0 - C["i"]), "i", C["zc"]["i"], w, cfg, grads)
    # peepholes on i and f read c_prev
    if cfg.peephole:
        for q in (("f",) if cfg.cifg else ("i", "f")):
            grads["p"][q] += (ds[q] * C["c_prev"]).sum(axis=0)
            dc_prev = dc_prev + ds[q] * w["p"][q]
    # s = W_ih x + W_hh h_prev (+ b)
    dS = np.concatenate([ds[q] for q in cfg.gates], axis=1)
    grads["W_ih"] += dS.T @ C["x"]
    grads["W_hh"] += dS.T @ C["h_prev"]
    if w["b"] is not None and not cfg.layer_norm:
        grads["b"] += dS.sum(axis=0)
    return dS @ w["W_ih"], dS @ w["W_hh"], dc_prev


# ----------------------------------------------------------------------------------------
# One direction of one layer over the sequence, with per-sequence lengths
# ----------------------------------------------------------------------------------------

def direction_weights(weights, cfg, l, sfx):
    """This layer-direction's weights under short names (float64)."""
    s = f"_l{l}{sfx}"
    get = lambda n: np.asarray(weights[n + s], dtype=np.float64) if (n + s) in weights else None
    H = cfg.H
    w = dict(W_ih=get("weight_ih"), W_hh=get("weight_hh"), W_hr=get("weight_hr"), b=None,
             rows={q: slice(k * H, (k + 1) * H) for k, q in enumerate(cfg.gates)})
    if cfg.bias:
        w["b"] = get("bias_ih") + get("bias_hh")           # both get the same gradient
        w["b_q"] = {q: w["b"][w["rows"][q]] for q in cfg.gates}
    if cfg.peephole:
        w["p"] = {q: get(f"weight_c{q}") for q in (("f", "o") if cfg.cifg else ("i", "f", "o"))}
    if cfg.layer_norm:
        w["gamma"] = {q: get(f"layer_norm_weight_{q}") for q in cfg.gates}
    return w


def zero_grads(w):
    g = {k: np.zeros_like(w[k]) for k in ("W_ih", "W_hh", "W_hr", "b") if w.get(k) is not None}
    for k in ("p", "gamma"):
        if k in w:
            g[k] = {q: np.zeros_like(v) for q, v in w[k].items()}
    return g


def run_direction(xs, h0, c0, lengths, w, cfg, backwards):
    """xs [T, B, In]. Step t of row b is valid when t < lengths[b]: padded steps output 0
    and leave the state alone, so the backwards direction starts each sequence at its own
    last valid step. Returns (out [T, B, Hout], hn, cn, steps)."""
    T, B = xs.shape[:2]
    out = np.zeros((T, B, h0.shape[-1]))
    h, c, steps = h0, c0, []
    for t in (range(T - 1, -1, -1) if backwards else range(T)):
        valid = (t < lengths)[:, None]
        h_new, c_new, cache = cell_step(xs[t], h, c, w, cfg)
        out[t] = np.where(valid, h_new, 0.0)
        h = np.where(valid, h_new, h)
        c = np.where(valid, c_new, c)
        steps.append((t, valid, cache))
    return out, h, c, steps


def run_direction_backward(d_out, dhn, dcn, steps, w, cfg, in_size):
    """Backward of run_direction. Returns (dxs, dh0, dc0, weight grads)."""
    grads = zero_grads(w)
    dxs = np.zeros(d_out.shape[:2] + (in_size,))
    dh, dc = dhn, dcn
    for t, valid, cache in reversed(steps):
        a = valid.astype(np.float64)
        # a padded step passes dh and dc straight through; its output gradient is ignored
        dx, dh_prev, dc_prev = cell_step_backward(a * (dh + d_out[t]), a * dc, cache, w, cfg, grads)
        dxs[t] = dx
        dh = dh_prev + (1.0 - a) * dh
        dc = dc_prev + (1.0 - a) * dc
    return dxs, dh, dc, grads


# ----------------------------------------------------------------------------------------
# The whole model
# ----------------------------------------------------------------------------------------

def lstm_forward(cfg, weights, x, h0, c0, lengths=None):
    """Returns (output, hn, cn, tape); tape is what lstm_backward needs."""
    cfg.validate()
    x = np.asarray(x, dtype=np.float64)
    if cfg.batch_first:
        x = x.transpose(1, 0, 2)
    T, B = x.shape[:2]
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths).reshape(B)
    h0 = np.asarray(h0, dtype=np.float64)
    c0 = np.asarray(c0, dtype=np.float64)
    hn, cn = np.empty_like(h0), np.empty_like(c0)
    layer_in, layers = x, []
    for l in range(cfg.num_layers):
        outs, dirs = [], []
        for d, sfx in enumerate(cfg.suffixes()):
            k = l * cfg.D + d
            w = direction_weights(weights, cfg, l, sfx)
            out, hn[k], cn[k], steps = run_direction(layer_in, h0[k], c0[k], lengths, w, cfg,
                                                     backwards=(sfx == "_reverse"))
            outs.append(out)
            dirs.append((k, sfx, w, steps))
        layers.append((layer_in.shape[-1], dirs))
        layer_in = np.concatenate(outs, axis=-1)
    output = layer_in.transpose(1, 0, 2) if cfg.batch_first else layer_in
    tape = dict(cfg=cfg, layers=layers, lengths=lengths)
    return output, hn, cn, tape


def lstm_backward(tape, grad_output, grad_hn, grad_cn):
    """Gradients of sum(output*grad_output) + sum(hn*grad_hn) + sum(cn*grad_cn):
    {"input", "h0", "c0", and every weight name}."""
    cfg = tape["cfg"]
    dy = np.asarray(grad_output, dtype=np.float64)
    if cfg.batch_first:
        dy = dy.transpose(1, 0, 2)
    grad_hn = np.asarray(grad_hn, dtype=np.float64)
    grad_cn = np.asarray(grad_cn, dtype=np.float64)
    out = {"h0": np.zeros_like(grad_hn), "c0": np.zeros_like(grad_cn)}
    Hout = cfg.Hout
    for l in reversed(range(cfg.num_layers)):
        in_size, dirs = tape["layers"][l]
        d_in = np.zeros(dy.shape[:2] + (in_size,))
        for d, (k, sfx, w, steps) in enumerate(dirs):
            dxs, out["h0"][k], out["c0"][k], g = run_direction_backward(
                dy[..., d * Hout:(d + 1) * Hout], grad_hn[k], grad_cn[k], steps, w, cfg, in_size)
            d_in += dxs
            s = f"_l{l}{sfx}"
            out["weight_ih" + s], out["weight_hh" + s] = g["W_ih"], g["W_hh"]
            if "b" in g:
                out["bias_ih" + s] = g["b"]
                out["bias_hh" + s] = g["b"].copy()
            if "W_hr" in g:
                out["weight_hr" + s] = g["W_hr"]
            for q, v in g.get("p", {}).items():
                out[f"weight_c{q}" + s] = v
            for q, v in g.get("gamma", {}).items():
                out[f"layer_norm_weight_{q}" + s] = v
        dy = d_in
    out["input"] = dy.transpose(1, 0, 2) if cfg.batch_first else dy
    return out


def loss(output, hn, cn, grad_output, grad_hn, grad_cn):
    """sum(output*grad_output) + sum(hn*grad_hn) + sum(cn*grad_cn)."""
    return float((output * grad_output).sum() + (hn * grad_hn).sum() + (cn * grad_cn).sum())


def clip_report(tape):
    """Over the valid steps: for each active clip (activation, cell, projection) the fraction
    of values clipped and the smallest distance | |v| - bound | of a value to its bound (how
    far every value is from flipping between clipped and not)."""
    cfg = tape["cfg"]
    sites = {"activation_clip": (cfg.activation_clip, []), "cell_clip": (cfg.cell_clip, []),
             "proj_clip": (cfg.proj_clip, [])}
    for _, dirs in tape["layers"]:
        for _, _, _, steps in dirs:
            for _, valid, C in steps:
                rows = valid[:, 0]
                for q in cfg.gates:
                    sites["activation_clip"][1].append(C["zc"][q]["raw"][rows].ravel())
                sites["cell_clip"][1].append(C["c_raw"][rows].ravel())
                if C["h_raw"] is not None:
                    sites["proj_clip"][1].append(C["h_raw"][rows].ravel())
    report = {}
    for name, (bound, vals) in sites.items():
        if bound == 0 or not vals:
            continue
        v = np.abs(np.concatenate(vals))
        if v.size == 0:
            continue
        report[name] = dict(fraction=float((v > bound).mean()), margin=float(np.abs(v - bound).min()))
    return report


def random_weights(cfg, rng, scale=1.0):
    """Uniform(-scale, scale) weights (layer-norm gains uniform(0.5, 1.5)) as float64."""
    w = {}
    for name, shape in cfg.weight_shapes().items():
        if name.startswith("layer_norm_weight"):
            w[name] = rng.uniform(0.5, 1.5, shape)
        else:
            w[name] = rng.uniform(-scale, scale, shape)
    return w
