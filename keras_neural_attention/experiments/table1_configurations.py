"""Table 1: configurations and parameter counts, language and vision.

Our parameter counts of the released code's configurations (computed from
the sizes for the language model, from built backbones for the ViTs) beside
the counts of the released PyTorch models, and the configurations and counts
of the models that this scale trains in the other tables.
"""

from keras_neural_attention.experiments import records
from keras_neural_attention.experiments import reproduction
from keras_neural_attention.experiments import scales

TITLE = "Configurations and parameter counts"
COLUMNS = [
    {"key": "model", "title": "Model", "format": "{}"},
    {"key": "attention", "title": "Attention", "format": "{}"},
    {"key": "layers", "title": "Layers", "format": "{}"},
    {"key": "width", "title": "Width", "format": "{}"},
    {"key": "heads", "title": "Heads x width", "format": "{}"},
    {"key": "projection_dim", "title": "d'", "format": "{}"},
    {"key": "tokens", "title": "Tokens", "format": "{}"},
    {"key": "parameters", "title": "Parameters (ours)", "format": "{:,}"},
    {"key": "released_code", "title": "Released code", "format": "{:,}"},
]


def _lm_row(model, attention, sizes, released=None):
    from keras_neural_attention.models import paper_lm_parameter_count

    head = sizes["hidden_dim"] // sizes["num_heads"]
    d = sizes.get("projection_dim") or max(1, head // 32)
    return {
        "model": model,
        "attention": attention,
        "layers": sizes["num_layers"],
        "width": sizes["hidden_dim"],
        "heads": f"{sizes['num_heads']} x {head}",
        "projection_dim": d if attention == "neural" else None,
        "tokens": sizes["max_sequence_length"],
        "parameters": paper_lm_parameter_count(attention, **sizes),
        "released_code": released,
    }


def vit_parameter_count(num_classes, config):
    """Parameters of `vision_transformer_classifier` on a
    `VisionTransformerBackbone(**config)`, computed from the sizes without
    building it (patch convolution, class token, learned position table if
    any, blocks, final norm, head); Neural blocks add
    `models.neural_attention_parameter_count`."""
    from keras_neural_attention.models import (
        neural_attention_parameter_count,
    )

    d, f = config["hidden_dim"], config["intermediate_dim"]
    p = config["patch_size"]
    channels = config["image_shape"][2]
    grid = (config["image_shape"][0] // p) * (config["image_shape"][1] // p)
    count = p * p * channels * d + d + d  # patch conv + bias, class token
    if config.get("position_embedding", "learned") == "learned":
        count += (grid + 1) * d
    attention_bias = config.get("use_attention_bias", True)
    head = d // config["num_heads"]
    options = (config.get("attention_options") or {}).get("neural", {})
    for kind in config["attention_types"]:
        count += 4 * d * d + (4 * d if attention_bias else 0)
        count += 2 * 2 * d  # two layer norms
        count += d * f + f + f * d + d  # feed-forward
        if kind == "neural":
            count += neural_attention_parameter_count(
                head, projection_dim=options.get("projection_dim"),
                hidden_units=options.get("hidden_units"))
    count += 2 * d  # final layer norm
    return count + d * num_classes + num_classes


def _vit_row(model, attention, num_classes, config, released=None):
    head = config["hidden_dim"] // config["num_heads"]
    d = (config.get("attention_options") or {}).get("neural", {}).get(
        "projection_dim") or max(1, head // 32)
    grid = config["image_shape"][0] // config["patch_size"]
    return {
        "model": model,
        "attention": attention,
        "layers": config["num_layers"],
        "width": config["hidden_dim"],
        "heads": f"{config['num_heads']} x {head}",
        "projection_dim": d if attention == "neural" else None,
        "tokens": grid * grid + 1,
        "parameters": vit_parameter_count(num_classes, config),
        "released_code": released,
    }


def _scale_vit_config(recipe, attention):
    types = ["dot_product"] * recipe.num_layers
    if attention == "neural":
        types[0] = "neural"
    options = None
    if recipe.projection_dim:
        options = {"neural": {"projection_dim": recipe.projection_dim}}
    return {
        "patch_size": recipe.patch_size, "num_layers": recipe.num_layers,
        "num_heads": recipe.num_heads, "hidden_dim": recipe.hidden_dim,
        "intermediate_dim": recipe.intermediate_dim,
        "image_shape": (recipe.image_size, recipe.image_size, 3),
        "attention_types": types, "normalize_first": False,
        "position_embedding": recipe.position_embedding,
        "use_attention_bias": False, "attention_options": options,
    }


def run(scale="smoke", data_dir=None, output_dir=None, log=None,
        verbose=2):
    """Table 1's record (no training; counts computed from the sizes)."""
    from keras_neural_attention.models import PAPER_LM_CONFIG
    from keras_neural_attention.models import RELEASED_CODE_PARAMETER_COUNTS
    from keras_neural_attention.models.vit import (
        RELEASED_CODE_VISION_PARAMETER_COUNTS,
    )
    from keras_neural_attention.models.vit import (
        paper_vision_transformer_config,
    )

    timer = reproduction.Timer()
    sizes = {k: PAPER_LM_CONFIG[k] for k in (
        "vocabulary_size", "num_layers", "num_heads", "hidden_dim",
        "intermediate_dim")}
    rows = []
    for attention in ("dot_product", "neural"):
        row = _lm_row("WikiText-103 LM (paper)", attention,
                      dict(sizes, max_sequence_length=1024),
                      RELEASED_CODE_PARAMETER_COUNTS[attention])
        rows.append(row)
    for dataset, classes in (("cifar10", 10), ("cifar100", 100)):
        for attention, variant in (("dot_product", "baseline"),
                                   ("neural", "neural")):
            rows.append(_vit_row(
                f"{dataset.upper()} ViT (paper)", attention, classes,
                paper_vision_transformer_config(neural=attention == "neural"),
                RELEASED_CODE_VISION_PARAMETER_COUNTS[dataset][variant]))
    lm = scales.LANGUAGE[scale]
    vit = scales.VISION[scale]
    if scale != "paper":
        lm_sizes = {
            "vocabulary_size": lm.vocabulary_size,
            "num_layers": lm.num_layers, "num_heads": lm.num_heads,
            "hidden_dim": lm.hidden_dim,
            "intermediate_dim": lm.intermediate_dim,
        }
        if lm.projection_dim:
            lm_sizes["projection_dim"] = lm.projection_dim
        for attention in ("dot_product", "neural"):
            row = _lm_row(f"LM at scale {scale}", attention,
                          dict(lm_sizes, max_sequence_length=lm.context))
            rows.append(row)
        for attention in ("dot_product", "neural"):
            rows.append(_vit_row(f"CIFAR-10 ViT at scale {scale}",
                                 attention, 10,
                                 _scale_vit_config(vit, attention)))
    lm_neural = next(r for r in rows if r["model"].startswith("WikiText")
                     and r["attention"] == "neural")
    lm_dot = rows[0]
    paper = [
        {"quantity": "LM parameters, dot-product",
         "paper": "46,527,812 (released code)",
         "ours": lm_dot["parameters"], "format": "{:,}"},
        {"quantity": "LM parameters added by Neural Attention",
         "paper": "+275 (released code)",
         "ours": lm_neural["parameters"] - lm_dot["parameters"],
         "format": "{:+,}"},
    ]
    for dataset in ("CIFAR10", "CIFAR100"):
        dot, neural = [r for r in rows if r["model"] ==
                       f"{dataset} ViT (paper)"]
        paper.append({
            "quantity": f"{dataset} ViT parameters, dot-product",
            "paper": f"{dot['released_code']:,} (released code)",
            "ours": dot["parameters"], "format": "{:,}"})
        paper.append({
            "quantity": f"{dataset} ViT parameters added by Neural",
            "paper": "+609 (released code)",
            "ours": neural["parameters"] - dot["parameters"],
            "format": "{:+,}"})
    notes = [
        "Released-code counts derived layer by layer from the authors' "
        "PyTorch code (neural-attention-paper.md, sec. 3 and 4); ours "
        "computed from the sizes (`models.paper_lm_parameter_count`, "
        "`vit_parameter_count`, which the tests check against built "
        "models).",
        "The paper's vision d' is 3 (96 // 32), not 2 as its README says; "
        "its language d' is 2.",
        reproduction.RELEASED_CODE_DIFFERENCES,
    ]
    return records.make_record(
        "1", TITLE, scale, COLUMNS, rows, paper=paper, notes=notes,
        seeds=(), wall_time_s=timer.seconds,
        recipe={"language": records_recipe(lm), "vision":
                records_recipe(vit)})


def records_recipe(recipe):
    from keras_neural_attention.experiments.recipes import recipe_dict

    return recipe_dict(recipe)


def recipe_record(scale):
    """The `recipe` a run at `scale` writes into its record."""
    return {"language": records_recipe(scales.LANGUAGE[scale]),
            "vision": records_recipe(scales.VISION[scale])}
