"""Measures how far the drop-in layers are from the NumPy reference for
every mask form and `attention_axes` case, and counts masked-key checks.

The cases and the reference are those of `tests/layers/test_drop_in_masks.py`
(independent NumPy loops over batch, heads and pairs); this script records
the largest absolute difference of outputs and attention probabilities for
each case on the current backend, in one JSON file per backend:

    KERAS_BACKEND=jax python benchmarks/mask_forms_check.py \
        --output-dir benchmarks/results/2026-12-01-cpu-drop-in

Run it from the repository root (it imports the test module).
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tests.layers import test_drop_in_masks as cases  # noqa: E402
from tests.backend_utils import to_numpy  # noqa: E402


def mask_form_rows():
    rows = []
    for cls in cases.LAYER_CLASSES:
        for form in cases.FORM_NAMES:
            rng = np.random.default_rng(1)
            layer = cases.make_layer(cls)
            query = rng.normal(size=(cases.B, cases.T, 12)).astype("float32")
            value = rng.normal(size=(cases.B, cases.S, 12)).astype("float32")
            layer(query, value)
            cases.randomize_biases(layer, rng)
            _, mask, full = cases._form(form, rng)
            out, probs = layer(query, value, attention_mask=mask,
                               return_attention_scores=True)
            ref_out, ref_probs = cases.reference_layer(layer, query, value,
                                                       full)
            rows.append({
                "layer": cls.__name__,
                "mask": form,
                "max_abs_diff_output": float(
                    np.max(np.abs(to_numpy(out) - ref_out))),
                "max_abs_diff_probabilities": float(
                    np.max(np.abs(to_numpy(probs) - ref_probs))),
            })
    return rows


def axes_rows():
    rows = []
    for cls in (cases.NeuralAttention, cases.ExpressiveAttention):
        for shape, axes, mask_shape in cases.AXES_CASES:
            rng = np.random.default_rng(7)
            x = rng.normal(size=(cases.B,) + shape).astype("float32")
            mask = None if mask_shape is None else (
                rng.random(mask_shape) > 0.3)
            layer = cases.make_layer(cls, attention_axes=axes)
            layer(x, x, attention_mask=mask)
            cases.randomize_biases(layer, rng)
            out, probs = layer(x, x, attention_mask=mask,
                               return_attention_scores=True)
            ref_out, ref_probs, _ = cases._axes_reference(layer, x, axes,
                                                          mask)
            rows.append({
                "layer": cls.__name__,
                "input_shape": [None] + list(shape),
                "attention_axes": axes if not isinstance(axes, tuple)
                else list(axes),
                "mask_shape": None if mask_shape is None
                else list(mask_shape),
                "max_abs_diff_output": float(
                    np.max(np.abs(to_numpy(out) - ref_out))),
                "max_abs_diff_probabilities": float(
                    np.max(np.abs(to_numpy(probs) - ref_probs))),
            })
    return rows


def masked_key_checks(num_cases):
    """The property test's loop, counting every masked (b, n, i, j) checked
    to have probability exactly 0."""
    rng = np.random.default_rng(13)
    checked = failures = 0
    for case in range(num_cases):
        cls = cases.LAYER_CLASSES[case % len(cases.LAYER_CLASSES)]
        heads = int(rng.integers(1, 5))
        t_len = heads if case % 3 == 0 else int(rng.integers(1, 7))
        s_len = int(rng.integers(1, 7))
        batch = int(rng.integers(1, 4))
        layer = cases.make_layer(cls, num_heads=heads, key_dim=4)
        query = rng.normal(size=(batch, t_len, 6)).astype("float32") * 3
        value = rng.normal(size=(batch, s_len, 6)).astype("float32") * 3
        _, mask, full = cases.mask_forms(rng, batch, heads, t_len, s_len)[
            int(rng.integers(0, len(cases.FORM_NAMES)))
        ]
        kwargs = {}
        if cls not in cases.CACHED and t_len == s_len and case % 2:
            kwargs["use_causal_mask"] = True
            full = full & np.tril(np.ones((t_len, s_len), bool))
        _, probs = layer(query, value, attention_mask=mask,
                         return_attention_scores=True, **kwargs)
        probs = to_numpy(probs)
        checked += int((~full).sum())
        failures += int((probs[~full] != 0).sum())
    return {"cases": num_cases, "masked_keys_checked": checked,
            "nonzero_masked_probabilities": failures}


def render(output_dir):
    """One markdown table over every backend's record in `output_dir`
    (`mask-forms.md`): the largest difference over the four layers for each
    mask form, and over Neural and Expressive for each axes case."""
    records = {}
    for name in sorted(os.listdir(output_dir)):
        if name.startswith("mask-forms-") and name.endswith(".json"):
            with open(os.path.join(output_dir, name)) as f:
                record = json.load(f)
            records[record["backend"]] = record
    backends = sorted(records)

    def worst(rows, key):
        return max(max(r["max_abs_diff_output"],
                       r["max_abs_diff_probabilities"]) for r in rows
                   if key(r))

    lines = ["# Drop-in masks and attention_axes against the NumPy reference",
             "",
             "Largest |ours - reference| of outputs and probabilities "
             "(float32 layers, float64 NumPy loops). "
             + "; ".join(f"{b}: {records[b]['date']}, {records[b]['machine']}"
                         for b in backends), "",
             "| mask form | " + " | ".join(backends) + " |",
             "|---|" + "---|" * len(backends)]
    forms = list(dict.fromkeys(
        r["mask"] for r in records[backends[0]]["mask_forms"]))
    for form in forms:
        lines.append(f"| {form} | " + " | ".join(
            f"{worst(records[b]['mask_forms'], lambda r: r['mask'] == form):.1e}"
            for b in backends) + " |")
    lines += ["", "| input shape | attention_axes | mask shape | "
              + " | ".join(backends) + " |",
              "|---|---|---|" + "---|" * len(backends)]
    seen = []
    for row in records[backends[0]]["attention_axes"]:
        key = (row["input_shape"], row["attention_axes"], row["mask_shape"])
        if key in seen:
            continue
        seen.append(key)

        def same(r, key=key):
            return (r["input_shape"], r["attention_axes"],
                    r["mask_shape"]) == key

        shape = "(" + ", ".join("B" if d is None else str(d)
                                for d in key[0]) + ")"
        lines.append(f"| {shape} | {key[1]} | {key[2]} | " + " | ".join(
            f"{worst(records[b]['attention_axes'], same):.1e}"
            for b in backends) + " |")
    lines += ["", "| property test | " + " | ".join(backends) + " |",
              "|---|" + "---|" * len(backends)]
    for field in ("cases", "masked_keys_checked",
                  "nonzero_masked_probabilities"):
        lines.append(f"| {field} | " + " | ".join(
            str(records[b]["property"][field]) for b in backends) + " |")
    path = os.path.join(output_dir, "mask-forms.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--property-cases", type=int, default=400)
    parser.add_argument("--render", action="store_true",
                        help="only render mask-forms.md from the records")
    args = parser.parse_args()
    if args.render:
        print(render(args.output_dir))
        return
    start = time.time()
    record = {
        "what": "max |ours - NumPy reference| per mask form and "
                "attention_axes case (float32 layers, float64 reference)",
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "device": "cpu",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "mask_forms": mask_form_rows(),
        "attention_axes": axes_rows(),
        "property": masked_key_checks(args.property_cases),
    }
    record["wall_time_s"] = round(time.time() - start, 1)
    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir,
                        f"mask-forms-{record['backend']}.json")
    with open(path, "w") as f:
        json.dump(record, f, indent=1)
    worst = max(r["max_abs_diff_output"] for r in
                record["mask_forms"] + record["attention_axes"])
    print(f"{path}: worst output difference {worst:.2e}; "
          f"{record['property']}")
    render(args.output_dir)


if __name__ == "__main__":
    main()
