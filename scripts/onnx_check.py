#!/usr/bin/env python3
"""Checks lstm-gpu's ONNX import (and `lstm-gpu run` on .onnx models) against onnxruntime.

For every supported combination of the ONNX LSTM attributes (direction forward / reverse /
bidirectional, peepholes P, input_forget, clip, bias B or none, sequence_lens, initial
states, a stacked chain of LSTM nodes as torch.onnx.export writes it) it builds a model with
onnx.helper, runs it in onnxruntime and through `lstm-gpu run MODEL.onnx`, and compares the
outputs element by element, printing the max absolute difference. Models exported from
torch.nn.LSTM by torch.onnx.export (layers, bidirectional, batch_first) are checked the same
way, and `lstm-gpu export` is checked by running its file in onnxruntime.

onnxruntime refuses layout=1 (batch-major) LSTMs: those are checked against the same model
with layout=0 and Transposes around it (which onnxruntime runs). When scripts/lstm_reference.py
(the float64 NumPy oracle) is present, every case is also imported with `lstm-gpu import` and
run by that reference with the imported weights and metadata, which checks the conversion
(gate order, peepholes, input_forget, clip, direction, layout) independently of the engine.

    /work/torchenv/bin/python scripts/onnx_check.py --lstm-gpu .build/debug/lstm-gpu
    /work/torchenv/bin/python scripts/onnx_check.py --write-fixtures Tests/LSTMKitTests/Fixtures/onnx

Needs numpy, onnx, onnxruntime, safetensors (and torch for the torch.onnx.export cases).
Exits 1 when any comparison fails.
"""
import argparse
import itertools
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
TOLERANCE = (1e-5, 1e-4)  # |ours - ref| <= atol + rtol * |ref|


class Case:
    """One model: sizes and the ONNX attributes."""

    def __init__(self, name, I=4, H=5, T=6, B=3, L=1, direction="forward", peepholes=False, cifg=False,
                 clip=0.0, bias=True, lengths=None, states=True, layout=0, extra_ops=False):
        self.name, self.I, self.H, self.T, self.B, self.L = name, I, H, T, B, L
        self.direction, self.peepholes, self.cifg, self.clip, self.bias = direction, peepholes, cifg, clip, bias
        self.lengths, self.states, self.layout, self.extra_ops = lengths, states, layout, extra_ops

    @property
    def D(self):
        return 2 if self.direction == "bidirectional" else 1


def random_weights(case, rng):
    """ONNX tensors per layer: W [D, 4H, In], R [D, 4H, H], B [D, 8H], P [D, 3H]."""
    layers = []
    for layer in range(case.L):
        width = case.I if layer == 0 else case.D * case.H
        w = {
            "W": rng.uniform(-1, 1, (case.D, 4 * case.H, width)).astype(np.float32),
            "R": rng.uniform(-1, 1, (case.D, 4 * case.H, case.H)).astype(np.float32),
        }
        if case.bias:
            w["B"] = rng.uniform(-1, 1, (case.D, 8 * case.H)).astype(np.float32)
        if case.peepholes:
            w["P"] = rng.uniform(-1, 1, (case.D, 3 * case.H)).astype(np.float32)
        layers.append(w)
    return layers


def build_model(case, weights, layout=None):
    """A model with graph inputs input ([T, B, I]; [B, T, I] with layout 1), h0, c0 [L*D, B, H],
    lengths (int32 [B]) as the case has them, and outputs output [T, B, D*H] ([B, T, D*H]),
    hn, cn [L*D, B, H]: PyTorch's layout, which is lstm-gpu's. Layers are chained as
    torch.onnx.export writes them (Squeeze, or Transpose + Reshape for two directions).
    layout=0 for a layout=1 case gives the equivalent model with Transposes around it."""
    layout = case.layout if layout is None else layout
    batch_major = case.layout == 1
    T, B, I, H, D, L = case.T, case.B, case.I, case.H, case.D, case.L
    nodes, inits = [], []
    inits.append(numpy_helper.from_array(np.array([0, 0, -1], np.int64), "shape_00m1"))
    if D == 1 and L > 1 and layout == 0:
        inits.append(numpy_helper.from_array(np.array([1], np.int64), "axis1"))
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [B, T, I] if batch_major else [T, B, I])]
    if case.states:
        inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [L * D, B, H]) for n in ("h0", "c0")]
    if case.lengths is not None:
        inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT32, [B]))
    x = "input"
    if batch_major and layout == 0:
        nodes.append(helper.make_node("Transpose", ["input"], ["input_tb"], perm=[1, 0, 2]))
        x = "input_tb"
    hn, cn = [], []
    for l in range(L):
        w = weights[l]
        for key in w:
            inits.append(numpy_helper.from_array(w[key], f"{key}_{l}"))
        states = ["", ""]
        if case.states:
            for k, state in enumerate(("h0", "c0")):
                for part, value in (("start", l * D), ("end", (l + 1) * D)):
                    inits.append(numpy_helper.from_array(np.array([value], np.int64), f"{state}_{part}_{l}"))
                nodes.append(helper.make_node("Slice", [state, f"{state}_start_{l}", f"{state}_end_{l}"],
                                              [f"{state}_{l}"]))
                states[k] = f"{state}_{l}"
                if layout == 1:  # initial states are [B, D, H] with layout 1
                    nodes.append(helper.make_node("Transpose", [states[k]], [states[k] + "_bdh"], perm=[1, 0, 2]))
                    states[k] += "_bdh"
        attrs = {"hidden_size": H}
        if case.direction != "forward":
            attrs["direction"] = case.direction
        if case.clip:
            attrs["clip"] = case.clip
        if case.cifg:
            attrs["input_forget"] = 1
        if layout == 1:
            attrs["layout"] = 1
        lstm_inputs = [x, f"W_{l}", f"R_{l}", f"B_{l}" if case.bias else "",
                       "lengths" if case.lengths is not None else "", states[0], states[1],
                       f"P_{l}" if case.peepholes else ""]
        while lstm_inputs[-1] == "":
            lstm_inputs.pop()
        nodes.append(helper.make_node("LSTM", lstm_inputs, [f"Y_{l}", f"Yh_{l}", f"Yc_{l}"], name=f"lstm_{l}", **attrs))
        for name, parts in (("Yh", hn), ("Yc", cn)):
            if layout == 1:  # Y_h [B, D, H] -> [D, B, H]
                nodes.append(helper.make_node("Transpose", [f"{name}_{l}"], [f"{name}_{l}_dbh"], perm=[1, 0, 2]))
                parts.append(f"{name}_{l}_dbh")
            else:
                parts.append(f"{name}_{l}")
        last = l == L - 1
        out = ("output_tb" if batch_major and layout == 0 else "output") if last else f"X_{l + 1}"
        if layout == 1:  # Y [B, T, D, H] -> [B, T, D*H]
            nodes.append(helper.make_node("Reshape", [f"Y_{l}", "shape_00m1"], [out]))
        elif D == 1 and not last:  # Y [T, 1, B, H] -> [T, B, H], as torch.onnx.export writes it
            nodes.append(helper.make_node("Squeeze", [f"Y_{l}", "axis1"], [out]))
        else:  # Y [T, D, B, H] -> [T, B, D, H] -> [T, B, D*H]
            nodes.append(helper.make_node("Transpose", [f"Y_{l}"], [f"Yt_{l}"], perm=[0, 2, 1, 3]))
            nodes.append(helper.make_node("Reshape", [f"Yt_{l}", "shape_00m1"], [out]))
        x = out
    if batch_major and layout == 0:
        nodes.append(helper.make_node("Transpose", ["output_tb"], ["output"], perm=[1, 0, 2]))
    outputs = ["output"]
    for name, parts in (("hn", hn), ("cn", cn)):
        nodes.append(helper.make_node("Concat", parts, [name], axis=0) if len(parts) > 1
                     else helper.make_node("Identity", parts, [name]))
        outputs.append(name)
    if case.extra_ops:  # a head after the LSTM, which lstm-gpu lists and does not run
        nodes.append(helper.make_node("Sigmoid", ["output"], ["probabilities"], name="head"))
        outputs.append("probabilities")
    graph = helper.make_graph(nodes, case.name, inputs,
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, None, None]) for n in outputs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], producer_name="onnx_check.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def random_inputs(case, rng):
    """lstm-gpu's run inputs (input, h0, c0, lengths as int64) for the case."""
    T, B = case.T, case.B
    tensors = {"input": rng.standard_normal((B, T, case.I) if case.layout == 1 else (T, B, case.I))
               .astype(np.float32)}
    if case.states:
        tensors["h0"] = rng.standard_normal((case.L * case.D, B, case.H)).astype(np.float32)
        tensors["c0"] = rng.standard_normal((case.L * case.D, B, case.H)).astype(np.float32)
    if case.lengths is not None:
        tensors["lengths"] = np.array(case.lengths, np.int64)
    return tensors


def run_onnxruntime(model, tensors):
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only (not the unused-initializer warnings)
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = {i.name: (tensors[i.name].astype(np.int32) if i.name == "lengths" else tensors[i.name])
             for i in session.get_inputs()}
    names = [o.name for o in session.get_outputs()][:3]
    return dict(zip(names, session.run(names, feeds)))


def run_lstm_gpu(binary, model_path, tensors, folder, backend):
    inp, out = os.path.join(folder, "in.safetensors"), os.path.join(folder, "out.safetensors")
    save_file(tensors, inp)
    if os.path.exists(out):
        os.remove(out)
    result = subprocess.run([binary, "run", model_path, "--input", inp, "--output", out, "--backend", backend],
                            capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line and "note:" not in line]
        raise RuntimeError(f"lstm-gpu run failed ({result.returncode}): {lines[0] if lines else ''}")
    return load_file(out)


def run_imported_reference(binary, model_path, tensors, folder, reference_path):
    """`lstm-gpu import` of the model, run by the float64 NumPy reference with the imported
    weights and the configuration recorded in the file's metadata: checks the importer's
    conversion (gate order, peepholes, input_forget, clip, direction, layout) without
    lstm-gpu's engine."""
    import importlib.util
    from safetensors import safe_open
    spec = importlib.util.spec_from_file_location("lstm_reference", reference_path)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    path = os.path.join(folder, "imported.safetensors")
    result = subprocess.run([binary, "import", model_path, "--output", path], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"lstm-gpu import failed ({result.returncode}): {result.stderr.strip()}")
    with safe_open(path, framework="np") as f:
        meta = f.metadata()
    weights = {k: v.astype(np.float64) for k, v in load_file(path).items()}
    flag = lambda key: meta.get(key, "false") == "true"
    cfg = ref.LSTMConfig(input_size=int(meta["input_size"]), hidden_size=int(meta["hidden_size"]),
                         num_layers=int(meta["num_layers"]), bias=flag("bias"), batch_first=flag("batch_first"),
                         bidirectional=flag("bidirectional"), peephole=flag("peephole"), cifg=flag("cifg"),
                         activation_clip=float(meta.get("activation_clip", 0)), reverse=flag("reverse"))
    states = (cfg.num_layers * cfg.D, tensors["input"].shape[0 if cfg.batch_first else 1], cfg.hidden_size)
    output, hn, cn, _ = ref.lstm_forward(
        cfg, weights, tensors["input"], tensors.get("h0", np.zeros(states)), tensors.get("c0", np.zeros(states)),
        lengths=list(tensors["lengths"]) if "lengths" in tensors else None)
    return {"output": output, "hn": hn, "cn": cn}


def worse(a, b):
    """The larger difference, NaN when either is."""
    return float("nan") if np.isnan(a) or np.isnan(b) else max(a, b)


def compare(label, ours, reference):
    worst, ok = 0.0, True
    for name in ("output", "hn", "cn"):
        a, b = np.asarray(ours[name], np.float64), np.asarray(reference[name], np.float64)
        if a.shape != b.shape:
            print(f"FAIL {label}: {name} has shape {a.shape}, the reference {b.shape}")
            return False, float("nan")
        diff = np.abs(a - b)
        if np.isnan(diff).any():
            worst = float("nan")
        elif diff.size and not np.isnan(worst):
            worst = max(worst, float(diff.max()))
        ok = ok and bool(np.all(diff <= TOLERANCE[0] + TOLERANCE[1] * np.abs(b)))
    print(f"{'PASS' if ok else 'FAIL'} {label}: max abs diff {worst:.2e}")
    return ok, worst


def cases():
    """Every supported attribute combination, then the special ones."""
    out = []
    for direction, peep, cifg, clip, layers in itertools.product(
            ("forward", "reverse", "bidirectional"), (False, True), (False, True), (0.0, 0.7), (1, 2)):
        k = len(out)
        name = f"{direction}-L{layers}" + ("-peep" if peep else "") + ("-cifg" if cifg else "") + \
            ("-clip" if clip else "")
        lengths = [6, 2, 4] if k % 2 == 0 else None
        out.append(Case(name, L=layers, direction=direction, peepholes=peep, cifg=cifg, clip=clip,
                        lengths=lengths, states=k % 3 != 2, bias=k % 5 != 4))
    out.append(Case("no-bias-no-states", bias=False, states=False))
    # A sequence of length 0: onnxruntime gives hn = cn = 0, lstm-gpu (PyTorch's packed
    # semantics: the state is left alone) gives h0, c0; equal only without initial states.
    out.append(Case("lengths-zero", lengths=[0, 6, 3], direction="bidirectional", states=False))
    out.append(Case("extra-ops", extra_ops=True, lengths=[6, 1, 3]))
    for direction, layers, options in itertools.product(("forward", "reverse", "bidirectional"), (1, 2),
                                                         (False, True)):
        out.append(Case(f"layout1-{direction}-L{layers}" + ("-peep-cifg-clip" if options else ""), L=layers,
                        direction=direction, layout=1, peepholes=options, cifg=options, clip=0.7 if options else 0,
                        lengths=[6, 2, 5]))
    return out


# The committed fixtures: small, one per feature, with onnxruntime's outputs.
FIXTURES = [
    Case("plain", lengths=[6, 3, 5]),
    Case("bidirectional-2layer", L=2, direction="bidirectional", lengths=[6, 2, 4]),
    Case("reverse", direction="reverse", lengths=[5, 6, 1]),
    Case("peepholes", peepholes=True),
    Case("cifg-peepholes", cifg=True, peepholes=True, lengths=[6, 4, 2]),
    Case("clip", clip=0.5, direction="bidirectional"),
    Case("everything", L=2, direction="bidirectional", peepholes=True, cifg=True, clip=0.7, lengths=[3, 6, 5]),
    Case("layout1", layout=1, direction="bidirectional", lengths=[6, 2, 5]),
]


def torch_cases(binary, folder, backend):
    """nn.LSTM exported by torch.onnx.export, checked against onnxruntime and lstm-gpu run."""
    try:
        import torch
    except ImportError:
        print("NOTE torch is not installed: the torch.onnx.export cases are skipped")
        return True, 0.0
    ok, worst = True, 0.0
    for layers, bidirectional, batch_first in itertools.product((1, 2), (False, True), (False, True)):
        torch.manual_seed(layers * 4 + bidirectional * 2 + batch_first)
        lstm = torch.nn.LSTM(4, 5, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
        D = 2 if bidirectional else 1
        x = torch.randn((3, 6, 4) if batch_first else (6, 3, 4))
        h0, c0 = torch.randn(layers * D, 3, 5), torch.randn(layers * D, 3, 5)
        path = os.path.join(folder, "torch.onnx")
        torch.onnx.export(lstm, (x, (h0, c0)), path, input_names=["input", "h0", "c0"],
                          output_names=["output", "hn", "cn"], opset_version=14, dynamo=False)
        tensors = {"input": x.numpy(), "h0": h0.numpy(), "c0": c0.numpy()}
        model = onnx.load(path)
        label = f"torch.onnx.export L={layers} bidirectional={bidirectional} batch_first={batch_first}"
        with torch.no_grad():
            out, (hn, cn) = lstm(x, (h0, c0))
        torch_out = {"output": out.numpy(), "hn": hn.numpy(), "cn": cn.numpy()}
        a, w1 = compare(label + " onnxruntime vs torch", run_onnxruntime(model, tensors), torch_out)
        b, w2 = compare(label + " lstm-gpu vs onnxruntime", run_lstm_gpu(binary, path, tensors, folder, backend),
                        run_onnxruntime(model, tensors))
        ok, worst = ok and a and b, worse(worst, w2)
    return ok, worst


def export_check(binary, folder, backend):
    """lstm-gpu import then export: the exported file, run in onnxruntime, matches lstm-gpu run."""
    ok, worst = True, 0.0
    rng = np.random.default_rng(7)
    for case in (Case("export-bi-L2", L=2, direction="bidirectional", lengths=[6, 3, 1]),
                 Case("export-reverse-peep-cifg-clip", direction="reverse", peepholes=True, cifg=True, clip=0.6,
                      lengths=[2, 6, 4]),
                 Case("export-bi-L2-peep-cifg-clip", L=2, direction="bidirectional", peepholes=True, cifg=True,
                      clip=0.8, lengths=[6, 1, 4]),
                 Case("export-peep", peepholes=True, bias=False),
                 Case("export-batch-first", layout=1, L=2, lengths=[6, 5, 3])):
        weights = random_weights(case, rng)
        source = os.path.join(folder, "source.onnx")
        onnx.save(build_model(case, weights), source)
        equivalent = build_model(case, weights, layout=0)
        st, exported = os.path.join(folder, "imported.safetensors"), os.path.join(folder, "exported.onnx")
        for args in (["import", source, "--output", st], ["export", st, "--output", exported]):
            result = subprocess.run([binary] + args, capture_output=True, text=True)
            if result.returncode != 0:
                print(f"FAIL {case.name}: lstm-gpu {args[0]}: {result.stderr.strip()}")
                ok = False
                break
        else:
            model = onnx.load(exported)
            onnx.checker.check_model(model, full_check=True)
            tensors = random_inputs(case, rng)
            tensors.setdefault("lengths", np.full(case.B, case.T, np.int64))
            tensors.setdefault("h0", np.zeros((case.L * case.D, case.B, case.H), np.float32))
            tensors.setdefault("c0", np.zeros((case.L * case.D, case.B, case.H), np.float32))
            exported_out = run_onnxruntime(model, tensors)
            good, w = compare(f"{case.name}: import + export, run in onnxruntime vs the source model in onnxruntime",
                              exported_out, run_onnxruntime(equivalent, tensors))
            ok, worst = ok and good, worse(worst, w)
            try:
                ours = run_lstm_gpu(binary, st, tensors, folder, backend)
            except RuntimeError as error:
                print(f"FAIL {case.name}: {str(error).splitlines()[0]}")
                ok = False
                continue
            good, w = compare(f"{case.name}: lstm-gpu export run in onnxruntime vs lstm-gpu run",
                              run_onnxruntime(model, tensors), ours)
            ok, worst = ok and good, worse(worst, w)
    return ok, worst


def write_fixtures(folder):
    """Writes NAME.onnx and NAME.safetensors (the inputs and onnxruntime's output, hn, cn) per
    fixture, and one model with its weights in an external data file."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(14)
    for case in FIXTURES + [Case("external-data", L=2, lengths=[6, 5, 2])]:
        weights = random_weights(case, rng)
        model = build_model(case, weights)
        tensors = random_inputs(case, rng)
        expected = run_onnxruntime(build_model(case, weights, layout=0), tensors)
        path = os.path.join(folder, case.name + ".onnx")
        if case.name == "external-data":
            onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=case.name + ".weights", size_threshold=0)
        else:
            onnx.save(model, path)
        save_file({**tensors, **{k: np.ascontiguousarray(v) for k, v in expected.items()}},
                  os.path.join(folder, case.name + ".safetensors"),
                  metadata={"format": "onnx-check/1", "source": "scripts/onnx_check.py --write-fixtures",
                            "expected": "onnxruntime " + ort.__version__})
        print(f"wrote {path}")
    write_torch_fixture(folder)


def write_torch_fixture(folder):
    """torch-batch-first.onnx: nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True)
    as torch.onnx.export writes it (Transposes around, Slice of h0/c0, Constant nodes), with
    onnxruntime's outputs (checked here against torch's)."""
    import torch
    torch.manual_seed(14)
    lstm = torch.nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True)
    x, h0, c0 = torch.randn(3, 6, 4), torch.randn(4, 3, 5), torch.randn(4, 3, 5)
    path = os.path.join(folder, "torch-batch-first.onnx")
    torch.onnx.export(lstm, (x, (h0, c0)), path, input_names=["input", "h0", "c0"],
                      output_names=["output", "hn", "cn"], opset_version=14, dynamo=False)
    tensors = {"input": x.numpy(), "h0": h0.numpy(), "c0": c0.numpy()}
    expected = run_onnxruntime(onnx.load(path), tensors)
    with torch.no_grad():
        out, (hn, cn) = lstm(x, (h0, c0))
    ok, _ = compare("torch-batch-first: onnxruntime vs torch", expected,
                    {"output": out.numpy(), "hn": hn.numpy(), "cn": cn.numpy()})
    assert ok
    save_file({**tensors, **{k: np.ascontiguousarray(v) for k, v in expected.items()}},
              os.path.join(folder, "torch-batch-first.safetensors"),
              metadata={"format": "onnx-check/1", "source": "scripts/onnx_check.py --write-fixtures",
                        "expected": "onnxruntime " + ort.__version__ + ", torch " + torch.__version__})
    print(f"wrote {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lstm-gpu", default=os.path.join(HERE, "..", ".build", "debug", "lstm-gpu"),
                        help="the lstm-gpu binary (default: .build/debug/lstm-gpu)")
    parser.add_argument("--backend", default="cpu", help="lstm-gpu run --backend (cpu, opencl, reference)")
    parser.add_argument("--write-fixtures", metavar="DIR", help="write the committed test files to DIR and exit")
    parser.add_argument("--reference", default=os.path.join(HERE, "lstm_reference.py"),
                        help="the float64 NumPy reference (default: scripts/lstm_reference.py)")
    parser.add_argument("--only", help="run only the cases whose name contains this text")
    args = parser.parse_args()
    if args.write_fixtures:
        write_fixtures(args.write_fixtures)
        return 0
    binary = os.path.abspath(args.lstm_gpu)
    have_reference = os.path.exists(args.reference)
    if not have_reference:
        print(f"NOTE {args.reference} is absent: the importer's conversion is checked only through "
              "lstm-gpu run (layout=1 cases against onnxruntime running the equivalent layout=0 model)")
    rng = np.random.default_rng(2026)
    failed, worst = [], {}
    with tempfile.TemporaryDirectory() as folder:
        for case in cases():
            if args.only and args.only not in case.name:
                continue
            weights = random_weights(case, rng)
            model = build_model(case, weights)
            path = os.path.join(folder, "model.onnx")
            onnx.save(model, path)
            tensors = random_inputs(case, rng)
            # onnxruntime refuses layout=1: it runs the equivalent layout=0 model instead.
            reference = run_onnxruntime(build_model(case, weights, layout=0), tensors)
            versus = " vs onnxruntime" + (" (the layout=0 equivalent)" if case.layout == 1 else "")
            ok = True
            if have_reference:
                try:
                    good, _ = compare(case.name + ": import + lstm_reference.py (float64)" + versus,
                                      run_imported_reference(binary, path, tensors, folder, args.reference),
                                      reference)
                except RuntimeError as error:
                    print(f"FAIL {case.name}: {error}")
                    good = False
                ok = ok and good
            try:
                good, w = compare(case.name + ": lstm-gpu run" + versus,
                                  run_lstm_gpu(binary, path, tensors, folder, args.backend), reference)
                worst[case.name] = w
            except RuntimeError as error:
                print(f"FAIL {case.name}: {error}")
                good = False
                worst[case.name] = float("nan")
            if not (ok and good):
                failed.append(case.name)
        if not args.only:
            ok, w = torch_cases(binary, folder, args.backend)
            worst["torch.onnx.export"] = w
            if not ok:
                failed.append("torch.onnx.export")
            ok, w = export_check(binary, folder, args.backend)
            worst["export"] = w
            if not ok:
                failed.append("export")
    values = list(worst.values())
    overall = float("nan") if any(np.isnan(v) for v in values) else max(values, default=0.0)
    print(f"max abs diff over all cases: {overall:.2e}")
    print(f"onnx_check: {len(worst) - len([f for f in failed if f in worst])} passed, {len(failed)} failed"
          + (": " + ", ".join(failed) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
