"""The main job: a built-in synthetic task on which dot-product attention and
Neural Attention are trained side by side.

- `nearest_key`: the nearest-key retrieval task (`make_dataset`) and its two
  models (`build_model`), identical except for the attention layer.
- `comparison`: `run_comparison` (training in fresh child processes, with
  measured peak memory), `format_table`, `verdict` and `write_results`.

Run it with `python -m keras_neural_attention.cli demo` (`make demo`).

The paper's tables (`keras-neural-attention reproduce <1..7|all> --scale
smoke|cpu|gpu|paper`) stand on one shared core:

- `data` (WikiText, CIFAR), `tokenization` (WordPiece, the released code's
  blocks), `recipes` (recipes as data, optimizer, schedules, augmentation,
  initialization), `scales` (the recipes of each scale), `training`
  (`model.fit` with CSV history and best checkpoint), `evaluation`
  (perplexity protocols, accuracy, cost), `cost`, `records` (JSON records
  and the one markdown writer), `environment`, `plots`;
- one module per table: `table1_configurations`, `table2_language_model`,
  `table3_cifar10`, `table4_cifar100` (with `vision_tables`),
  `table5_cost`, `table6_projection_width`, `table7_attention_layers`, run
  by `reproduce`.

The companion-paper experiments (`capacity`, `complexity_ladder`,
`quarks`) use the same `records` and `environment`.
"""

from keras_neural_attention.experiments.comparison import SCALES
from keras_neural_attention.experiments.comparison import Scale
from keras_neural_attention.experiments.comparison import environment_info
from keras_neural_attention.experiments.comparison import format_report
from keras_neural_attention.experiments.comparison import format_table
from keras_neural_attention.experiments.comparison import get_scale
from keras_neural_attention.experiments.comparison import make_splits
from keras_neural_attention.experiments.comparison import run_comparison
from keras_neural_attention.experiments.comparison import table_notes
from keras_neural_attention.experiments.comparison import train_one
from keras_neural_attention.experiments.comparison import verdict
from keras_neural_attention.experiments.comparison import write_results
from keras_neural_attention.experiments.nearest_key import ATTENTION_KINDS
from keras_neural_attention.experiments.nearest_key import (
    DEFAULT_MODEL_CONFIG,
)
from keras_neural_attention.experiments.nearest_key import attention_weights
from keras_neural_attention.experiments.nearest_key import build_model
from keras_neural_attention.experiments.nearest_key import (
    count_trainable_params,
)
from keras_neural_attention.experiments.nearest_key import load_trained_model
from keras_neural_attention.experiments.nearest_key import make_dataset
from keras_neural_attention.experiments.nearest_key import nearest_key_index
from keras_neural_attention.experiments.nearest_key import seed_everything

__all__ = [
    "ATTENTION_KINDS",
    "DEFAULT_MODEL_CONFIG",
    "SCALES",
    "Scale",
    "attention_weights",
    "build_model",
    "count_trainable_params",
    "environment_info",
    "format_report",
    "format_table",
    "get_scale",
    "load_trained_model",
    "make_dataset",
    "make_splits",
    "nearest_key_index",
    "run_comparison",
    "seed_everything",
    "table_notes",
    "train_one",
    "verdict",
    "write_results",
]
