"""The reproduction's scales, as recipes.

- `smoke`: every table in under two minutes on a 2-core CPU (CI runs the
  notebooks at this scale); numbers are plumbing checks, not results.
- `cpu`: the most informative run within about an hour per table on a
  2-core CPU: small models, WikiText-2 `valid` as training text and `test`
  for evaluation, a CIFAR-10 subset, two seeds per mechanism.
- `gpu`: one GPU, minutes; the CIFAR-10 recipe is fixed by issue 11 so that
  runs can be compared.
- `paper`: the released code's configurations (days of GPU time).
- `tiny`: the unit tests' scale (seconds, on data the tests write).

Each table module picks its `TableScale` from these recipes.
"""

import dataclasses

from keras_neural_attention.experiments.recipes import LanguageModelRecipe
from keras_neural_attention.experiments.recipes import VisionRecipe

SCALE_NAMES = ("tiny", "smoke", "cpu", "gpu", "paper")

LANGUAGE = {
    "tiny": LanguageModelRecipe(
        dataset="wikitext-2", train_split="valid", eval_split="test",
        vocabulary_size=40, context=8, num_layers=1, num_heads=2,
        hidden_dim=16, intermediate_dim=16, steps=2, validation_every=2,
        batch_size=2, eval_batch_size=4, released_code_stride=4,
        seeds=(0,),
    ),
    "smoke": LanguageModelRecipe(
        dataset="wikitext-2", train_split="valid", eval_split="test",
        max_train_lines=200, max_eval_lines=40, vocabulary_size=400,
        context=32, num_layers=1, num_heads=2, hidden_dim=64,
        intermediate_dim=64, steps=24, validation_every=12, batch_size=8,
        eval_batch_size=32, released_code_stride=16, learning_rate=1e-3,
        seeds=(0,),
    ),
    "cpu": LanguageModelRecipe(
        dataset="wikitext-2", train_split="valid", eval_split="test",
        # WikiText-2 valid (217k words) yields a WordPiece vocabulary of
        # about 3,950 entries at this size request.
        vocabulary_size=4000, context=64, num_layers=4, num_heads=2,
        hidden_dim=128, intermediate_dim=256, steps=800,
        validation_every=200, batch_size=16, eval_batch_size=64,
        released_code_stride=32, learning_rate=1e-3,
        schedule="warmup_cosine", warmup_steps=60, seeds=(0, 1),
    ),
    "gpu": LanguageModelRecipe(
        dataset="wikitext-103", train_split="train", eval_split="test",
        max_train_lines=200_000, vocabulary_size=28996, context=512,
        num_layers=6, num_heads=8, hidden_dim=512, intermediate_dim=1024,
        steps=4000, validation_every=1000, batch_size=16,
        eval_batch_size=16, released_code_stride=256, learning_rate=6e-4,
        schedule="warmup_cosine", warmup_steps=200, seeds=(0,),
    ),
    # The released code: 8 x 512, 8 heads, context 1024, batch 1, lr 3e-4
    # constant, 2,000,010 steps; its vocabulary is bert-base-cased's
    # (pass `vocabulary_file`), else one is learned on the train split.
    "paper": LanguageModelRecipe(seeds=(0,)),
}

VISION = {
    "tiny": VisionRecipe(
        num_train=20, num_test=10, image_size=32, patch_size=8,
        num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=16,
        epochs=1, batch_size=10, learning_rate=1e-3, augmentation=None,
        seeds=(0,),
    ),
    "smoke": VisionRecipe(
        num_train=512, num_test=256, image_size=32, patch_size=4,
        num_layers=2, num_heads=2, hidden_dim=64, intermediate_dim=128,
        epochs=2, batch_size=64, learning_rate=1e-3,
        schedule="warmup_cosine", warmup_epochs=0.5,
        # No augmentation at smoke: compiling the random crop on JAX takes
        # minutes on a loaded 2-core machine.
        augmentation=None, seeds=(0,),
    ),
    # A 4-layer ViT of width 128 (patch 4, 2 heads of 64): about 50 s per
    # 10,000 images per epoch on JAX on this 2-core machine.
    "cpu": VisionRecipe(
        num_train=8_000, num_test=2_000, image_size=32, patch_size=4,
        num_layers=4, num_heads=2, hidden_dim=128, intermediate_dim=256,
        epochs=5, batch_size=128, learning_rate=1e-3, weight_decay=0.05,
        schedule="warmup_cosine", warmup_epochs=1,
        augmentation="crop_flip", seeds=(0, 1),
    ),
    # Issue 11's fixed GPU recipe for CIFAR-10.
    "gpu": VisionRecipe(
        image_size=32, patch_size=4, num_layers=6, num_heads=6,
        hidden_dim=384, intermediate_dim=1024,
        position_embedding="released_code", normalize_first=False,
        epochs=10, batch_size=128, learning_rate=5e-4, weight_decay=0.05,
        schedule="warmup_cosine", warmup_epochs=2, global_clipnorm=1.0,
        augmentation="crop_flip", seeds=(0,),
    ),
    # The released code: 224 x 224, patch 8 (785 tokens), 12 x 768, 8
    # heads, batch 1, lr 5e-5, 350 epochs, its augmentation.
    "paper": VisionRecipe(seeds=(0,)),
}


def language_recipe(scale, **changes):
    """`LANGUAGE[scale]` with `changes` applied."""
    return dataclasses.replace(_get(LANGUAGE, scale), **changes)


def vision_recipe(scale, **changes):
    """`VISION[scale]` with `changes` applied."""
    return dataclasses.replace(_get(VISION, scale), **changes)


def _get(recipes, scale):
    if scale not in recipes:
        raise ValueError(
            f"Argument `scale` must be one of "
            f"{', '.join(repr(s) for s in recipes)}. "
            f"Received: scale={scale!r}"
        )
    return recipes[scale]
