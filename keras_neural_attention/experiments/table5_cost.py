"""Table 5: cost of dot-product attention vs Neural Attention (first
layer): training-step time, inference time per sample, peak memory and
throughput of the language model and the ViT, and the language model's
cost against the sequence length T.

The released code logs "Inference Time (s)", "Inference Time per Sample
(s)", "GPU Memory Allocated / Reserved (MB)" and "Throughput"; its
per-sample time was not divided by the batch size and its memory numbers
were adjusted by hand (neural-attention-paper.md, sec. 8): only the ratios
are comparable.
"""

from keras_neural_attention.experiments import cost
from keras_neural_attention.experiments import records
from keras_neural_attention.experiments import reproduction
from keras_neural_attention.experiments import scales
from keras_neural_attention.experiments.recipes import TableScale
from keras_neural_attention.experiments.recipes import scale_dict

TITLE = "Cost: dot-product vs Neural (first layer)"
SCALES = {
    "tiny": TableScale(
        language=scales.LANGUAGE["tiny"], vision=scales.VISION["tiny"],
        sequence_lengths=(8,), cost_batch_size=2, cost_repeats=1,
        isolate=False),
    "smoke": TableScale(
        language=scales.LANGUAGE["smoke"],
        vision=scales.vision_recipe("smoke", num_layers=1),
        sequence_lengths=(32,), cost_batch_size=4, cost_repeats=2,
        isolate=False,
        note="Smoke scale: one sequence length (each size compiles two "
        "more functions per model); measured in the calling process: CPU "
        "memory not measured."),
    "cpu": TableScale(
        language=scales.LANGUAGE["cpu"], vision=scales.VISION["cpu"],
        # 20 timed steps: on a shared 2-core CPU the first few steps of a
        # fresh process vary by 50% (0.25 s down to 0.17 s for the ViT).
        sequence_lengths=(64, 128, 256, 512), cost_batch_size=8,
        cost_repeats=20, isolate=True),
    "gpu": TableScale(
        language=scales.LANGUAGE["gpu"], vision=scales.VISION["gpu"],
        sequence_lengths=(256, 512, 1024, 2048), cost_batch_size=16,
        cost_repeats=10, isolate=True),
    "paper": TableScale(
        language=scales.LANGUAGE["paper"], vision=scales.VISION["paper"],
        sequence_lengths=(256, 512, 1024), cost_batch_size=1,
        cost_repeats=10, isolate=True),
}
COLUMNS = [
    {"key": "domain", "title": "Model", "format": "{}"},
    {"key": "attention", "title": "Attention", "format": "{}"},
    {"key": "tokens", "title": "T", "format": "{}"},
    {"key": "batch_size", "title": "Batch", "format": "{}"},
    {"key": "train_step_s", "title": "Train step (s)", "format": "{:.4f}"},
    {"key": "inference_per_sample_s", "title": "Inference / sample (s)",
     "format": "{:.5f}"},
    {"key": "throughput_samples_per_s",
     "title": "Throughput (samples/s)", "format": "{:.1f}"},
    {"key": "memory_mib", "title": "Peak memory (MiB)", "format": "{:.0f}"},
]


def run(scale="smoke", data_dir=None, output_dir=None, log=None,
        verbose=2):
    """Table 5's record (no data needed: random inputs)."""
    table_scale = SCALES[scale]
    timer = reproduction.Timer()
    rows = []
    for domain in ("language", "vision"):
        for attention in ("dot_product", "neural"):
            if domain == "language":
                series = [cost.with_context(table_scale.language, t)
                          for t in sorted(table_scale.sequence_lengths)]
            else:
                series = [table_scale.vision]
            if log:
                log(f"Measuring {domain} {attention} ...")
            results = cost.measure(
                domain, attention, series, table_scale.cost_batch_size,
                table_scale.cost_repeats, table_scale.isolate)
            for result in results:
                result["memory_mib"] = cost.memory_of(result)
                rows.append(result)
    paper = []
    for domain in ("language", "vision"):
        mine = [r for r in rows if r["domain"] == domain]
        largest = max(r["tokens"] for r in mine)
        dot = next(r for r in mine if r["attention"] == "dot_product"
                   and r["tokens"] == largest)
        neural = next(r for r in mine if r["attention"] == "neural"
                      and r["tokens"] == largest)
        paper.append({
            "quantity": f"{domain}: Neural / dot-product train-step time "
                        f"(T = {largest})",
            "paper": "higher (\"higher computational demands\"; values "
                     "pending the PDF)",
            "ours": neural["train_step_s"] / dot["train_step_s"],
            "format": "{:.2f}x"})
        if dot["memory_mib"] and neural["memory_mib"]:
            paper.append({
                "quantity": f"{domain}: Neural / dot-product peak memory "
                            f"(T = {largest})",
                "paper": "higher (values pending the PDF)",
                "ours": neural["memory_mib"] / dot["memory_mib"],
                "format": "{:.2f}x"})
    notes = [
        "Train step: the median of the timed `train_on_batch` calls "
        "(each listed in its row) after two warm-up calls; inference: the "
        "median `predict_on_batch`, divided by the batch size "
        "(the released code did not divide). The ViT's step is the "
        "model's: a crop-and-flip augmentation runs in the input pipeline "
        "(as in training), not in the timed step.",
        "Peak memory: " + (
            "the accelerator's peak allocation, or on a CPU the growth of "
            "a fresh child process's peak RSS (one child per model, sizes "
            "smallest first)." if table_scale.isolate else
            "the accelerator's peak allocation; not measured on a CPU at "
            "this scale (models measured in the calling process)."),
        "Random inputs; timings depend on the machine and its load.",
    ]
    if table_scale.note:
        notes.append(table_scale.note)
    return records.make_record(
        "5", TITLE, scale, COLUMNS, rows, paper=paper, notes=notes,
        seeds=(0,), wall_time_s=timer.seconds,
        recipe=scale_dict(table_scale))


def recipe_record(scale):
    """The `recipe` a run at `scale` writes into its record."""
    return scale_dict(SCALES[scale])
