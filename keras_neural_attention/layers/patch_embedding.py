"""`PatchEmbedding`: image patches to tokens, with a class token and
position embeddings for images of any size divisible by the patch size."""

import math

import keras
from keras import ops

from keras_neural_attention.layers import argument_checks

POSITION_EMBEDDINGS = ("learned", "sinusoidal", "released_code")


def _is_positive_int(value):
    return (
        isinstance(value, int) and not isinstance(value, bool) and value > 0
    )


def _pair(value, name, allow_none=False):
    if value is None and allow_none:
        return None
    if _is_positive_int(value):
        return (value, value)
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(_is_positive_int(v) for v in value)
    ):
        return tuple(value)
    accepted = "a positive int or a pair of positive ints"
    if allow_none:
        accepted += " (or None)"
    raise ValueError(
        f"Argument `{name}` must be {accepted}. Received: {name}={value!r}"
    )


def released_code_sinusoid(length, dim):
    """The 1D sinusoid of the Neural Attention authors' released code.

    `pe[p, i] = sin(p / 10000**(2i / dim))` and
    `pe[p, i + 1] = cos(p / 10000**((2i + 1) / dim))` for even `i`: the
    exponents are about twice those of the standard sinusoid of "Attention
    Is All You Need" (kept as written there).

    Args:
        length: int or scalar tensor. Number of positions.
        dim: int. Even embedding width.

    Returns:
        A float32 tensor of shape `(length, dim)`.
    """
    positions = ops.cast(ops.arange(length), "float32")[:, None]
    even = ops.cast(ops.arange(0, dim, 2), "float32")
    sin = ops.sin(positions / ops.power(10000.0, 2.0 * even / dim))
    cos = ops.cos(positions / ops.power(10000.0, (2.0 * even + 1.0) / dim))
    return ops.reshape(ops.stack([sin, cos], axis=-1), (-1, dim))


def sinusoid_2d(height, width, dim):
    """Fixed 2D sine-cosine position embeddings of a `height x width` grid.

    The first half of the channels encodes the row, the second half the
    column, each with the standard 1D sinusoid (frequencies
    `1 / 10000**(2k / (dim / 2))`), as in MAE (He et al., 2021).

    Args:
        height: int or scalar tensor. Grid rows.
        width: int or scalar tensor. Grid columns.
        dim: int. Embedding width, a multiple of 4.

    Returns:
        A float32 tensor of shape `(height * width, dim)` in row-major
        patch order.
    """
    quarter = dim // 4
    frequencies = 1.0 / ops.power(
        10000.0, ops.cast(ops.arange(quarter), "float32") / quarter
    )

    def encode(length):
        angles = (
            ops.cast(ops.arange(length), "float32")[:, None]
            * frequencies[None, :]
        )
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    rows = encode(height)  # (height, dim / 2)
    columns = encode(width)  # (width, dim / 2)
    rows = ops.broadcast_to(rows[:, None, :], (height, width, dim // 2))
    columns = ops.broadcast_to(
        columns[None, :, :], (height, width, dim // 2)
    )
    grid = ops.concatenate([rows, columns], axis=-1)
    return ops.reshape(grid, (-1, dim))


@keras.saving.register_keras_serializable(package="keras_neural_attention")
class PatchEmbedding(keras.layers.Layer):
    """Splits images into patches and embeds them as a token sequence.

    A `Conv2D` with kernel and stride `patch_size` maps each non-overlapping
    patch to a `hidden_dim` vector (the released code's `Conv2d(3, dim, 8,
    8)`); the `(h, w)` grid of patches is flattened row by row, an optional
    learned class token (zero-initialized, as in the released code) is
    prepended, and position information is added. Images of any height and
    width divisible by the patch size are accepted; other sizes raise
    `ValueError` (a strided convolution would silently drop the border).

    Position embeddings (`position_embedding`):

    - `"learned"`: a learned table of shape `position_grid_size +
      (hidden_dim,)` (plus one vector for the class token). For a patch grid
      of another size the table is resized bilinearly, as when ViTs are
      fine-tuned at a new resolution (Dosovitskiy et al., 2021, sec. 3.2).
    - `"sinusoidal"`: fixed 2D sine-cosine embeddings computed for the
      actual grid (no weights; `hidden_dim` must be a multiple of 4); the
      class token gets none.
    - `"released_code"`: the authors' released code: the 1D sinusoid of
      `released_code_sinusoid` over the flattened sequence (class token
      first) added as `x + dropout(sqrt(hidden_dim) * x + pe)`, i.e.
      `(1 + sqrt(hidden_dim)) * x + pe` at inference. No weights. Any
      sequence length works, but positions follow the flattened order, so a
      change of grid width moves the row boundaries.

    Args:
        patch_size: int or `(int, int)`. Patch height and width.
        hidden_dim: int. Token width.
        use_class_token: bool. Prepend a learned class token. Defaults to
            `True`.
        position_embedding: one of `"learned"` (default), `"sinusoidal"`,
            `"released_code"`.
        position_grid_size: `(int, int)` or None. Patch grid of the learned
            table (`"learned"` only). Defaults to the grid of the first
            input shape the layer is built with, which must then be static.
        dropout: float. Dropout rate on the embedded tokens.
        use_patch_bias: bool. Whether the patch projection has a bias.
        kernel_initializer: initializer of the patch projection kernel.
        bias_initializer: initializer of the patch projection bias.
        **kwargs: arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        - images: `(B, H, W, C)` images (channels last), `H` and `W`
          divisible by the patch size.
        - training: bool. Whether dropout is active.

    Returns:
        Tokens of shape `(B, 1 + (H / ph) * (W / pw), hidden_dim)` (no `1 +`
        without a class token).

    Example:

    ```python
    import numpy as np
    from keras_neural_attention.layers import PatchEmbedding

    embed = PatchEmbedding(patch_size=4, hidden_dim=32,
                           position_grid_size=(8, 8))
    embed(np.zeros((2, 32, 32, 3), "float32")).shape   # (2, 65, 32)
    embed(np.zeros((2, 16, 24, 3), "float32")).shape   # (2, 25, 32)
    ```

    Reference:
        - [Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers
          for Image Recognition at Scale", ICLR 2021](
          https://arxiv.org/abs/2010.11929)
        - [DiGiugno & Mahmood, "Neural Attention", arXiv 2502.17206](
          https://arxiv.org/abs/2502.17206)
    """

    def __init__(
        self,
        patch_size,
        hidden_dim,
        use_class_token=True,
        position_embedding="learned",
        position_grid_size=None,
        dropout=0.0,
        use_patch_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.patch_size = _pair(patch_size, "patch_size")
        if not _is_positive_int(hidden_dim):
            raise ValueError(
                "Argument `hidden_dim` must be a positive integer. "
                f"Received: hidden_dim={hidden_dim!r}"
            )
        if position_embedding not in POSITION_EMBEDDINGS:
            raise ValueError(
                "Argument `position_embedding` must be one of "
                f"{POSITION_EMBEDDINGS}. "
                f"Received: position_embedding={position_embedding!r}"
            )
        if position_embedding == "sinusoidal" and hidden_dim % 4:
            raise ValueError(
                "`position_embedding='sinusoidal'` needs a `hidden_dim` "
                f"divisible by 4. Received: hidden_dim={hidden_dim}"
            )
        if position_embedding == "released_code" and hidden_dim % 2:
            raise ValueError(
                "`position_embedding='released_code'` needs an even "
                f"`hidden_dim`. Received: hidden_dim={hidden_dim}"
            )
        if not isinstance(use_class_token, bool):
            raise ValueError(
                "Argument `use_class_token` must be True or False. "
                f"Received: use_class_token={use_class_token!r}"
            )
        dropout = argument_checks.check_rate("dropout", dropout)
        argument_checks.check_bool("use_patch_bias", use_patch_bias)
        self.hidden_dim = hidden_dim
        self.use_class_token = use_class_token
        self.position_embedding = position_embedding
        self.position_grid_size = _pair(
            position_grid_size, "position_grid_size", allow_none=True
        )
        self.dropout = float(dropout)
        self.use_patch_bias = use_patch_bias
        self.kernel_initializer = argument_checks.check_initializer(
            "kernel_initializer", kernel_initializer
        )
        self.bias_initializer = argument_checks.check_initializer(
            "bias_initializer", bias_initializer
        )
        self.patch_projection = keras.layers.Conv2D(
            filters=hidden_dim,
            kernel_size=self.patch_size,
            strides=self.patch_size,
            padding="valid",
            use_bias=use_patch_bias,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            data_format="channels_last",
            dtype=self.dtype_policy,
            name="patch_projection",
        )
        self.token_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="token_dropout"
        )

    def check_image_size(self, height, width):
        """Raises `ValueError` if a static image size is not a multiple of
        the patch size (`None` dimensions are not checked)."""
        for size, patch, axis in zip(
            (height, width), self.patch_size, ("height", "width")
        ):
            if size is not None and size % patch:
                raise ValueError(
                    f"Image {axis} must be divisible by the patch size "
                    f"{self.patch_size}. Received: image shape with "
                    f"height={height}, width={width}"
                )

    def patch_grid(self, height, width):
        """The `(rows, columns)` patch grid of a static image size (None
        where unknown)."""
        self.check_image_size(height, width)
        return tuple(
            None if size is None else size // patch
            for size, patch in zip((height, width), self.patch_size)
        )

    def build(self, images_shape):
        if len(images_shape) != 4:
            raise ValueError(
                "PatchEmbedding expects images of shape `(B, H, W, C)`. "
                f"Received: images_shape={images_shape}"
            )
        grid = self.patch_grid(images_shape[1], images_shape[2])
        self.patch_projection.build(images_shape)
        if self.use_class_token:
            self.class_token = self.add_weight(
                name="class_token",
                shape=(self.hidden_dim,),
                initializer="zeros",
            )
        if self.position_embedding == "learned":
            if self.position_grid_size is None:
                if None in grid:
                    raise ValueError(
                        "`position_embedding='learned'` needs "
                        "`position_grid_size` when the layer is built for "
                        "images of unknown size. Received: images_shape="
                        f"{images_shape}, position_grid_size=None"
                    )
                self.position_grid_size = grid
            self.patch_position_embedding = self.add_weight(
                name="patch_position_embedding",
                shape=self.position_grid_size + (self.hidden_dim,),
                initializer=keras.initializers.RandomNormal(stddev=0.02),
            )
            if self.use_class_token:
                self.class_position_embedding = self.add_weight(
                    name="class_position_embedding",
                    shape=(self.hidden_dim,),
                    initializer=keras.initializers.RandomNormal(stddev=0.02),
                )
        self.built = True

    def _learned_positions(self, rows, columns):
        table = ops.cast(self.patch_position_embedding, self.compute_dtype)
        static = isinstance(rows, int) and isinstance(columns, int)
        if not static and keras.backend.backend() == "tensorflow":
            # A graph with unknown image size: `keras.ops.image.resize`
            # needs a static size; TensorFlow's resize (the same bilinear
            # half-pixel resampling Keras uses there) takes a tensor.
            import tensorflow as tf

            table = tf.image.resize(
                table[None],
                tf.stack([rows, columns]),
                method="bilinear",
                antialias=False,
            )[0]
        elif not static or (rows, columns) != self.position_grid_size:
            table = ops.image.resize(
                table[None],
                (rows, columns),
                interpolation="bilinear",
                antialias=False,
                data_format="channels_last",
            )[0]
        return ops.reshape(table, (-1, self.hidden_dim))

    def call(self, images, training=None):
        self.check_image_size(images.shape[1], images.shape[2])
        patches = self.patch_projection(images)
        dynamic = ops.shape(patches)
        batch = dynamic[0]
        rows = patches.shape[1] if patches.shape[1] is not None else dynamic[1]
        columns = (
            patches.shape[2] if patches.shape[2] is not None else dynamic[2]
        )
        tokens = ops.reshape(patches, (batch, -1, self.hidden_dim))
        positions = None
        if self.position_embedding == "learned":
            positions = self._learned_positions(rows, columns)
        elif self.position_embedding == "sinusoidal":
            positions = sinusoid_2d(rows, columns, self.hidden_dim)
        if positions is not None:
            positions = ops.cast(positions, tokens.dtype)
            tokens = tokens + positions[None]
        if self.use_class_token:
            class_token = ops.cast(self.class_token, tokens.dtype)
            if self.position_embedding == "learned":
                class_token = class_token + ops.cast(
                    self.class_position_embedding, tokens.dtype
                )
            class_tokens = ops.broadcast_to(
                class_token[None, None, :], (batch, 1, self.hidden_dim)
            )
            tokens = ops.concatenate([class_tokens, tokens], axis=1)
        if self.position_embedding == "released_code":
            length = ops.shape(tokens)[1]
            pe = ops.cast(
                released_code_sinusoid(length, self.hidden_dim), tokens.dtype
            )
            scaled = tokens * math.sqrt(self.hidden_dim) + pe[None]
            return tokens + self.token_dropout(scaled, training=training)
        return self.token_dropout(tokens, training=training)

    def compute_output_shape(self, images_shape):
        rows, columns = self.patch_grid(images_shape[1], images_shape[2])
        length = None if None in (rows, columns) else rows * columns
        if length is not None and self.use_class_token:
            length += 1
        return (images_shape[0], length, self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "patch_size": list(self.patch_size),
                "hidden_dim": self.hidden_dim,
                "use_class_token": self.use_class_token,
                "position_embedding": self.position_embedding,
                "position_grid_size": (
                    None
                    if self.position_grid_size is None
                    else list(self.position_grid_size)
                ),
                "dropout": self.dropout,
                "use_patch_bias": self.use_patch_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
            }
        )
        return config
