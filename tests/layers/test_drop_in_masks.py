"""The package's attention layers as drop-ins for `MultiHeadAttention`:
every mask form, `attention_axes`, and the override points.

Each case is checked against an independent NumPy computation (loops over
batch, heads and pairs, the mask written out in full as `(B, N, T, S)` from
the documented meaning of each form) and, where the two must agree, against
`keras.layers.MultiHeadAttention` itself: which positions are masked, output
and score shapes, `compute_output_shape`, the config round trip.
"""

import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_neural_attention.layers import CachedExpressiveAttention
from keras_neural_attention.layers import CachedNeuralAttention
from keras_neural_attention.layers import ExpressiveAttention
from keras_neural_attention.layers import NeuralAttention
from tests import numpy_reference
from tests.backend_utils import to_numpy

BACKEND = keras.backend.backend()
LAYER_CLASSES = [
    NeuralAttention,
    ExpressiveAttention,
    CachedNeuralAttention,
    CachedExpressiveAttention,
]
CACHED = (CachedNeuralAttention, CachedExpressiveAttention)


def make_layer(cls, num_heads=4, key_dim=8, **kwargs):
    if issubclass(cls, NeuralAttention):
        kwargs.setdefault("projection_dim", 2)
        kwargs.setdefault("hidden_units", (3, 2))
    return cls(num_heads=num_heads, key_dim=key_dim, **kwargs)


def randomize_biases(layer, rng):
    for w in layer.weights:
        if "bias" in w.path:
            w.assign(rng.normal(size=w.shape).astype(w.dtype) * 0.5)


# ----------------------------------------------------------------------
# NumPy reference
# ----------------------------------------------------------------------


def _dense(x, dense):
    kernel = to_numpy(dense.kernel).astype("float64")
    letters = "abcdefg"[: x.ndim - 1]
    out = np.einsum(f"{letters}z,zNH->{letters}NH", x, kernel)
    if dense.bias is not None:
        out = out + to_numpy(dense.bias).astype("float64")
    return out


def _expressive_probs(q, k, layer, mask):
    """Expressive weights of one head, (T, S), written out."""
    scale = 1.0
    if layer.normalization == "softmax":
        scale = 1.0 / math.sqrt(q.shape[-1])
    squares = (scale * q @ k.T) ** 2
    out = np.zeros_like(squares)
    for i in range(squares.shape[0]):
        keep = mask[i]
        if not keep.any():
            continue
        if layer.normalization == "ratio":
            out[i][keep] = squares[i][keep] / (
                layer.epsilon + squares[i][keep].sum()
            )
        else:
            e = np.exp(squares[i][keep] - squares[i][keep].max())
            out[i][keep] = e / e.sum()
    return out


def reference_heads(layer, q, k, v, full_mask):
    """q (B, T, N, H), k (B, S, N, H), v (B, S, N, Hv), full_mask (B, N, T,
    S) -> output (B, T, N, Hv) and probabilities (B, N, T, S)."""
    batch, t_len, heads, _ = q.shape
    s_len = k.shape[1]
    scoring = {
        w.path.split("/")[-1]: to_numpy(w).astype("float64")
        for w in layer.weights
        if w.path.split("/")[-1].startswith("score_")
    }
    out = np.zeros((batch, t_len, heads, v.shape[-1]))
    probs = np.zeros((batch, heads, t_len, s_len))
    for b in range(batch):
        for n in range(heads):
            if isinstance(layer, NeuralAttention):
                s = numpy_reference.score_matrix(q[b, :, n], k[b, :, n],
                                                 scoring, n)
                p = numpy_reference.masked_softmax(s, full_mask[b, n])
            else:
                p = _expressive_probs(q[b, :, n], k[b, :, n], layer,
                                      full_mask[b, n])
            probs[b, n] = p
            out[b, :, n] = p @ v[b, :, n]
    return out, probs


def reference_layer(layer, query, value, full_mask):
    """Rank-3 inputs: the whole layer, with a `(B, N, T, S)` mask."""
    query = np.asarray(query, "float64")
    value = np.asarray(value, "float64")
    q = _dense(query, layer.query_dense)
    k = _dense(value, layer.key_dense)
    v = _dense(value, layer.value_dense)
    heads_out, probs = reference_heads(layer, q, k, v, full_mask)
    out = np.einsum("btnh,nhe->bte", heads_out,
                    to_numpy(layer.output_dense.kernel).astype("float64"))
    out = out + to_numpy(layer.output_dense.bias).astype("float64")
    return out, probs


# ----------------------------------------------------------------------
# Mask forms, each with its meaning written out as (B, N, T, S)
# ----------------------------------------------------------------------

B, N, T, S = 2, 4, 4, 5  # T == num_heads: the case that went silently wrong


def mask_forms(rng, batch=B, heads=N, t_len=T, s_len=S):
    """(name, mask given to the layer, full (B, N, T, S) boolean meaning)."""
    def keep(*shape):
        m = rng.random(shape) > 0.35
        return m

    full = np.ones((batch, heads, t_len, s_len), bool)
    forms = []
    m = keep(t_len, s_len)
    forms.append(("(T, S)", m, full & m[None, None]))
    m = keep(batch, t_len, s_len)
    forms.append(("(B, T, S)", m, full & m[:, None]))
    m = keep(1, t_len, s_len)
    forms.append(("(1, T, S)", m, full & m[:, None]))
    m = keep(batch, 1, t_len, s_len)
    forms.append(("(B, 1, T, S)", m, full & m))
    m = keep(batch, heads, t_len, s_len)
    forms.append(("(B, N, T, S)", m, full & m))
    m = keep(1, heads, t_len, s_len)
    forms.append(("(1, N, T, S)", m, full & m))
    m = keep(batch, 1, s_len)
    forms.append(("(B, 1, S)", m, full & m[:, None]))
    m = keep(batch, t_len, s_len)
    forms.append(("(B, T, S) int32 0/1", m.astype("int32"),
                  full & m[:, None]))
    m = keep(t_len, s_len)
    forms.append(("(T, S) int 0/1", m.astype("int64"), full & m[None, None]))
    return forms


FORM_NAMES = [f[0] for f in mask_forms(np.random.default_rng(0))]


def _form(name, rng, **sizes):
    return next(f for f in mask_forms(rng, **sizes) if f[0] == name)


def _call(layer, query, value, mask, **kwargs):
    return layer(query, value, attention_mask=mask, **kwargs)


@pytest.mark.parametrize("form", FORM_NAMES)
@pytest.mark.parametrize("cls", LAYER_CLASSES, ids=lambda c: c.__name__)
def test_every_mask_form_matches_numpy_reference(cls, form):
    rng = np.random.default_rng(1)
    layer = make_layer(cls)
    query = rng.normal(size=(B, T, 12)).astype("float32")
    value = rng.normal(size=(B, S, 12)).astype("float32")
    layer(query, value)
    randomize_biases(layer, rng)
    _, mask, full = _form(form, rng)
    out, probs = _call(layer, query, value, mask,
                       return_attention_scores=True)
    ref_out, ref_probs = reference_layer(layer, query, value, full)
    np.testing.assert_allclose(to_numpy(probs), ref_probs, atol=1e-5)
    np.testing.assert_allclose(to_numpy(out), ref_out, atol=1e-5)
    # The fused path (no scores) computes the same output.
    np.testing.assert_allclose(
        to_numpy(_call(layer, query, value, mask)), ref_out, atol=1e-5
    )


@pytest.mark.parametrize("cls", LAYER_CLASSES, ids=lambda c: c.__name__)
def test_rank_2_mask_is_per_query_when_length_equals_heads(cls):
    """Regression: a `(T, S)` mask with T == num_heads was applied per head."""
    rng = np.random.default_rng(2)
    layer = make_layer(cls, num_heads=T)
    query = rng.normal(size=(B, T, 12)).astype("float32")
    value = rng.normal(size=(B, S, 12)).astype("float32")
    mask = rng.random((T, S)) > 0.5
    mask[:, 0] = True
    mask[0] = [True, False, False, False, False]
    out2, p2 = _call(layer, query, value, mask, return_attention_scores=True)
    out3, p3 = _call(layer, query, value, mask[None],
                     return_attention_scores=True)
    np.testing.assert_array_equal(to_numpy(out2), to_numpy(out3))
    p2 = to_numpy(p2)
    masked = np.broadcast_to(~mask[None, None], p2.shape)
    assert np.all(p2[masked] == 0.0)
    # Row 0 keeps only key 0: every head puts all its weight there.
    if cls in (NeuralAttention, CachedNeuralAttention):
        np.testing.assert_allclose(p2[:, :, 0, 0], 1.0, atol=1e-6)


@pytest.mark.parametrize("form", FORM_NAMES)
@pytest.mark.parametrize(
    "cls", [NeuralAttention, ExpressiveAttention], ids=lambda c: c.__name__
)
def test_masks_hide_the_same_positions_as_multi_head_attention(cls, form):
    rng = np.random.default_rng(3)
    layer = make_layer(cls)
    mha = keras.layers.MultiHeadAttention(num_heads=N, key_dim=8)
    query = rng.normal(size=(B, T, 12)).astype("float32")
    value = rng.normal(size=(B, S, 12)).astype("float32")
    _, mask, full = _form(form, rng)
    _, ours = _call(layer, query, value, mask, return_attention_scores=True)
    _, theirs = _call(mha, query, value, mask, return_attention_scores=True)
    ours, theirs = to_numpy(ours), to_numpy(theirs)
    assert ours.shape == theirs.shape
    # MultiHeadAttention spreads fully masked rows uniformly; ours are 0.
    rows = full.any(axis=-1, keepdims=True)
    np.testing.assert_array_equal(
        (ours == 0) & rows, (theirs < 1e-7) & rows
    )
    np.testing.assert_array_equal(ours[~full], 0.0)


@pytest.mark.parametrize("cls", [NeuralAttention, ExpressiveAttention],
                         ids=lambda c: c.__name__)
def test_masks_combine_with_embedding_masks_and_causal(cls):
    rng = np.random.default_rng(4)
    t_len = 5
    layer = make_layer(cls)
    embed = keras.layers.Embedding(10, 12, mask_zero=True)
    tokens = np.array([[3, 4, 5, 0, 0], [1, 2, 3, 4, 0]], "int32")
    token_keep = tokens != 0
    causal = np.tril(np.ones((t_len, t_len), bool))
    for name, mask, full in mask_forms(rng, t_len=t_len, s_len=t_len):
        # The layer consumes (clears) the Keras mask of its inputs, as
        # MultiHeadAttention does: embed again for every call.
        x = embed(tokens)
        out, probs = layer(x, x, attention_mask=mask, use_causal_mask=True,
                           return_attention_scores=True)
        expected = (
            full & causal[None, None] & token_keep[:, None, :, None]
            & token_keep[:, None, None, :]
        )
        ref_out, ref_probs = reference_layer(layer, to_numpy(x), to_numpy(x),
                                             expected)
        np.testing.assert_allclose(to_numpy(probs), ref_probs, atol=1e-5,
                                   err_msg=name)
        np.testing.assert_allclose(to_numpy(out), ref_out, atol=1e-5,
                                   err_msg=name)


@pytest.mark.parametrize("cls", CACHED, ids=lambda c: c.__name__)
@pytest.mark.parametrize("form", ["(T, S)", "(B, T, S)", "(B, N, T, S)"])
def test_cached_decoding_accepts_every_mask_form(cls, form):
    """A cache of length S with every mask form, step by step (KerasHub's
    cache tests use `(T, S)` masks)."""
    rng = np.random.default_rng(5)
    layer = make_layer(cls, key_dim=8)
    x = rng.normal(size=(B, S, 12)).astype("float32")
    causal = np.tril(np.ones((S, S), bool))
    shapes = {"(T, S)": causal, "(B, T, S)": np.broadcast_to(causal, (B, S, S)),
              "(B, N, T, S)": np.broadcast_to(causal, (B, N, S, S))}
    mask = np.array(shapes[form])
    full = layer(x, x, attention_mask=mask)
    cache = layer.empty_cache(B, S)
    steps = []
    for i in range(S):
        step_mask = mask[..., i:i + 1, :]
        y, cache = layer(x[:, i:i + 1], x[:, i:i + 1],
                         attention_mask=step_mask, cache=cache,
                         cache_update_index=i)
        steps.append(to_numpy(y))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), to_numpy(full),
                               atol=1e-5)


BAD_MASKS = [
    ((T + 1, S), "cannot broadcast"),
    ((T, S + 2), "cannot broadcast"),
    ((3, T, S), "batch"),
    ((B, N + 1, T, S), "heads"),
    ((B, 1, 1, T, S), "rank 5"),
    ((S,), "rank 1"),
]


@pytest.mark.parametrize("shape,why", BAD_MASKS)
@pytest.mark.parametrize("cls", LAYER_CLASSES, ids=lambda c: c.__name__)
def test_mask_that_cannot_broadcast_raises_value_error(cls, shape, why):
    rng = np.random.default_rng(6)
    layer = make_layer(cls)
    query = rng.normal(size=(B, T, 12)).astype("float32")
    value = rng.normal(size=(B, S, 12)).astype("float32")
    with pytest.raises(ValueError, match="attention_mask") as info:
        layer(query, value, attention_mask=np.ones(shape, bool))
    message = str(info.value)
    assert str(tuple(shape)) in message
    assert "(B, T, S)" in message


@pytest.mark.parametrize("cls", [NeuralAttention, ExpressiveAttention],
                         ids=lambda c: c.__name__)
def test_symbolic_calls_check_masks_and_give_score_shapes(cls):
    layer = make_layer(cls)
    mha = keras.layers.MultiHeadAttention(num_heads=N, key_dim=8)
    query = keras.Input((T, 12))
    value = keras.Input((S, 12))
    mask = keras.Input((N, T, S), dtype="bool")
    out, scores = layer(query, value, attention_mask=mask,
                        return_attention_scores=True)
    assert out.shape == (None, T, 12)
    assert scores.shape == (None, N, T, S)
    ref = mha(query, value, attention_mask=mask)
    assert ref.shape == out.shape
    with pytest.raises(ValueError, match="attention_mask"):
        layer(query, value, attention_mask=keras.Input((T + 1, S)))


# ----------------------------------------------------------------------
# attention_axes
# ----------------------------------------------------------------------

AXES_CASES = [
    # (input shape without batch, attention_axes, mask shape or None)
    ((3, 4, 6), None, None),
    ((3, 4, 6), (1, 2), (3, 4, 3, 4)),
    ((3, 4, 6), (1, 2), (B, 3, 4, 3, 4)),
    ((3, 4, 6), (1, 2), (B, N, 3, 4, 3, 4)),
    ((3, 4, 6), (2, 1), None),
    ((3, 4, 6), 2, (B, 3, 4, 4)),
    ((3, 4, 6), (-2,), (4, 4)),
    ((3, 4, 6), 1, (B, 4, N, 3, 3)),
    ((2, 3, 2, 6), (1, 3), (B, 3, 2, 2, 2, 2)),
    ((5, 6), -2, (B, 5, 5)),
]


def _axes_reference(layer, x, axes, mask):
    """NumPy: move the attention axes to the end (in the order given), fold
    the others into the batch, attend over the flattened positions, move
    everything back. The mask is expanded by MultiHeadAttention's rule."""
    x = np.asarray(x, "float64")
    rank = x.ndim
    axes = tuple(range(1, rank - 1)) if axes is None else (
        (axes,) if isinstance(axes, int) else tuple(axes)
    )
    axes = tuple(a + rank if a < 0 else a for a in axes)
    others = tuple(a for a in range(1, rank - 1) if a not in axes)
    q = _dense(x, layer.query_dense)
    k = _dense(x, layer.key_dense)
    v = _dense(x, layer.value_dense)
    perm = (0,) + others + axes + (rank - 1, rank)
    qp, kp, vp = (np.transpose(t, perm) for t in (q, k, v))
    lead = qp.shape[: 1 + len(others)]
    attn = qp.shape[1 + len(others): 1 + len(others) + len(axes)]
    length = int(np.prod(attn))
    flat = lambda t: t.reshape((-1, length) + t.shape[-2:])  # noqa: E731
    heads = layer.num_heads
    score_shape = lead + (heads,) + attn + attn
    if mask is None:
        full = np.ones(score_shape, bool)
    else:
        m = np.asarray(mask, bool)
        k2 = 2 * len(axes)
        while m.ndim < len(score_shape):
            m = np.expand_dims(m, m.ndim - k2)
        full = np.broadcast_to(m, score_shape)
    full_flat = full.reshape((-1, heads, length, length))
    out, probs = reference_heads(layer, flat(qp), flat(kp), flat(vp),
                                 full_flat)
    out = out.reshape(qp.shape[:-1] + (out.shape[-1],))
    out = np.transpose(out, np.argsort(perm))
    out = np.einsum(
        "...nh,nhe->...e", out,
        to_numpy(layer.output_dense.kernel).astype("float64"),
    ) + to_numpy(layer.output_dense.bias).astype("float64")
    return out, probs.reshape(score_shape), full


@pytest.mark.parametrize("shape,axes,mask_shape", AXES_CASES)
@pytest.mark.parametrize("cls", [NeuralAttention, ExpressiveAttention],
                         ids=lambda c: c.__name__)
def test_attention_axes_match_numpy_and_multi_head_attention(
    cls, shape, axes, mask_shape
):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(B,) + shape).astype("float32")
    mask = None if mask_shape is None else rng.random(mask_shape) > 0.3
    layer = make_layer(cls, attention_axes=axes)
    mha = keras.layers.MultiHeadAttention(num_heads=N, key_dim=8,
                                          attention_axes=axes)
    out, probs = layer(x, x, attention_mask=mask,
                       return_attention_scores=True)
    randomize_biases(layer, rng)
    out, probs = layer(x, x, attention_mask=mask,
                       return_attention_scores=True)
    ref_out, ref_probs, full = _axes_reference(layer, x, axes, mask)
    np.testing.assert_allclose(to_numpy(probs), ref_probs, atol=1e-5)
    np.testing.assert_allclose(to_numpy(out), ref_out, atol=1e-5)
    np.testing.assert_allclose(
        to_numpy(layer(x, x, attention_mask=mask)), ref_out, atol=1e-5
    )
    mha_out, mha_probs = mha(x, x, attention_mask=mask,
                             return_attention_scores=True)
    assert out.shape == mha_out.shape
    assert probs.shape == mha_probs.shape
    assert layer.compute_output_shape(x.shape, x.shape) == (
        mha.compute_output_shape(x.shape, x.shape)
    )
    assert tuple(layer.attention_axes) == tuple(mha.attention_axes)
    mha_probs = to_numpy(mha_probs)
    rows = full.reshape(full.shape[: full.ndim - len(layer.attention_axes)]
                        + (-1,)).any(-1)
    rows = rows.reshape(rows.shape + (1,) * len(layer.attention_axes))
    np.testing.assert_array_equal(
        (to_numpy(probs) == 0) & rows, (mha_probs < 1e-7) & rows
    )
    symbolic_out, symbolic_scores = layer(
        keras.Input(shape), keras.Input(shape), return_attention_scores=True
    )
    assert symbolic_out.shape == (None,) + shape
    assert symbolic_scores.shape == (None,) + tuple(probs.shape[1:])


@pytest.mark.parametrize("cls", [NeuralAttention, ExpressiveAttention],
                         ids=lambda c: c.__name__)
def test_attention_axes_config_round_trip_and_causal_over_flat_sequence(cls):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(B, 3, 4, 6)).astype("float32")
    layer = make_layer(cls, attention_axes=(1, 2))
    out = layer(x, x, use_causal_mask=True)
    config = layer.get_config()
    assert config["attention_axes"] == [1, 2]
    clone = cls.from_config(config)
    clone(x, x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        to_numpy(clone(x, x, use_causal_mask=True)), to_numpy(out), atol=1e-6
    )
    causal = np.tril(np.ones((12, 12), bool)).reshape(3, 4, 3, 4)
    ref_out, _, _ = _axes_reference(layer, x, (1, 2), causal)
    np.testing.assert_allclose(to_numpy(out), ref_out, atol=1e-5)


@pytest.mark.parametrize(
    "axes", [0, 3, (1, 1), (1, 4), -1, "1", (1.0,), (), True]
)
def test_bad_attention_axes_raise_value_error(axes):
    x = np.zeros((B, 3, 4, 6), "float32")
    with pytest.raises(ValueError, match="attention_axes"):
        layer = NeuralAttention(num_heads=2, key_dim=4, attention_axes=axes)
        layer(x, x)


# ----------------------------------------------------------------------
# Override points
# ----------------------------------------------------------------------


@pytest.mark.parametrize("cls", [NeuralAttention, ExpressiveAttention],
                         ids=lambda c: c.__name__)
def test_compute_attention_override_receives_a_causal_mask(cls):
    seen = {}

    class Recording(cls):
        def _compute_attention(self, query, key, value, attention_mask=None,
                               training=None, return_attention_scores=False):
            seen["mask"] = attention_mask
            return super()._compute_attention(
                query, key, value, attention_mask, training,
                return_attention_scores,
            )

    rng = np.random.default_rng(9)
    x = rng.normal(size=(B, 5, 12)).astype("float32")
    layer = make_layer(Recording)
    out = layer(x, x, use_causal_mask=True)
    mask = to_numpy(seen["mask"])
    np.testing.assert_array_equal(
        np.broadcast_to(mask, (1, 5, 5))[0], np.tril(np.ones((5, 5), bool))
    )
    plain = make_layer(cls)
    plain(x, x)
    plain.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        to_numpy(plain(x, x, use_causal_mask=True)), to_numpy(out), atol=1e-6
    )


@pytest.mark.parametrize("cls", [NeuralAttention, ExpressiveAttention],
                         ids=lambda c: c.__name__)
def test_compute_attention_mask_override_is_used(cls):
    class FirstKeyOnly(cls):
        def _compute_attention_mask(self, query, value, **kwargs):
            mask = super()._compute_attention_mask(query, value, **kwargs)
            first = np.zeros((1, query.shape[1], value.shape[1]), bool)
            first[..., 0] = True
            return first if mask is None else ops.logical_and(mask, first)

    rng = np.random.default_rng(10)
    x = rng.normal(size=(B, 5, 12)).astype("float32")
    layer = make_layer(FirstKeyOnly)
    for kwargs in ({}, {"use_causal_mask": True}):
        _, probs = layer(x, x, return_attention_scores=True, **kwargs)
        probs = to_numpy(probs)
        np.testing.assert_array_equal(probs[..., 1:], 0.0)


def test_compute_attention_mask_is_keras_shaped_for_per_query_masks():
    """Without a heads axis in the masks, the merged mask is `(B|1, T, S)`
    as in Keras, so subclasses that combine it with their own masks get
    Keras' broadcasting."""
    layer = make_layer(NeuralAttention)
    query = np.zeros((B, T, 12), "float32")
    value = np.zeros((B, S, 12), "float32")
    layer(query, value)
    mha = keras.layers.MultiHeadAttention(num_heads=N, key_dim=8)
    mha(query, value)
    for kwargs in (
        dict(query_mask=np.ones((B, T), bool)),
        dict(value_mask=np.ones((B, S), bool), use_causal_mask=True),
        dict(attention_mask=np.ones((T, S), bool)),
    ):
        ours = layer._compute_attention_mask(query, value, **kwargs)
        theirs = mha._compute_attention_mask(query, value, **kwargs)
        assert len(ours.shape) == 3
        np.testing.assert_array_equal(
            np.broadcast_to(to_numpy(ours), (B, T, S)),
            np.broadcast_to(to_numpy(theirs), (B, T, S)),
        )


# ----------------------------------------------------------------------
# Fused kernels and per-head masks
# ----------------------------------------------------------------------


def _kernel_name():
    if BACKEND == "jax":
        return "pallas"
    if BACKEND == "torch":
        import os

        if os.environ.get("TRITON_INTERPRET") != "1":
            return None
        try:
            import triton  # noqa: F401
        except ImportError:
            return None
        return "triton"
    return None


@pytest.mark.parametrize("form", ["(T, S)", "(B, N, T, S)", "(1, N, T, S)"])
def test_fused_kernels_take_every_mask_form(form):
    name = _kernel_name()
    if name is None:
        pytest.skip(f"no fused kernel runs on {BACKEND} here")
    rng = np.random.default_rng(11)
    query = rng.normal(size=(B, T, 12)).astype("float32")
    value = rng.normal(size=(B, S, 12)).astype("float32")
    _, mask, full = _form(form, rng)
    fused = make_layer(NeuralAttention, hidden_units=(2, 1),
                       implementation=name)
    fused(query, value)
    randomize_biases(fused, rng)
    ref_out, _ = reference_layer(fused, query, value, full)
    np.testing.assert_allclose(
        to_numpy(fused(query, value, attention_mask=mask)), ref_out,
        atol=1e-5,
    )


def test_per_head_mask_with_per_head_networks_routes_or_refuses():
    rng = np.random.default_rng(12)
    query = rng.normal(size=(B, T, 12)).astype("float32")
    value = rng.normal(size=(B, S, 12)).astype("float32")
    _, mask, full = _form("(B, N, T, S)", rng)
    layer = make_layer(NeuralAttention, share_scoring_across_heads=False)
    layer(query, value)
    randomize_biases(layer, rng)
    ref_out, _ = reference_layer(layer, query, value, full)
    np.testing.assert_allclose(
        to_numpy(layer(query, value, attention_mask=mask)), ref_out,
        atol=1e-5,
    )
    name = _kernel_name()
    if name is None:
        return
    named = make_layer(NeuralAttention, share_scoring_across_heads=False,
                       hidden_units=(2, 1), implementation=name)
    with pytest.raises(ValueError, match="per-head mask"):
        named(query, value, attention_mask=mask)


# ----------------------------------------------------------------------
# Property test: masked keys get exactly zero probability
# ----------------------------------------------------------------------

PROPERTY_CASES = 24
# (batch, heads, T, S): random masks, mask forms and causality on a few
# shapes, including T == heads (where a mask applied per head instead of
# per query still broadcasts) and T != S. Each new shape costs seconds of
# op-by-op compilation on JAX; masks and forms vary freely.
PROPERTY_SHAPES = ((1, 2, 2, 5), (2, 3, 3, 3), (2, 4, 5, 6), (3, 1, 6, 4))


def test_random_masks_give_masked_keys_exactly_zero_probability():
    rng = np.random.default_rng(13)
    checked = 0
    for case in range(PROPERTY_CASES):
        cls = LAYER_CLASSES[case % len(LAYER_CLASSES)]
        batch, heads, t_len, s_len = PROPERTY_SHAPES[
            int(rng.integers(0, len(PROPERTY_SHAPES)))]
        layer = make_layer(cls, num_heads=heads, key_dim=4)
        query = rng.normal(size=(batch, t_len, 6)).astype("float32") * 3
        value = rng.normal(size=(batch, s_len, 6)).astype("float32") * 3
        name, mask, full = mask_forms(rng, batch, heads, t_len, s_len)[
            int(rng.integers(0, len(FORM_NAMES)))
        ]
        kwargs = {}
        if cls not in CACHED and t_len == s_len and case % 2:
            kwargs["use_causal_mask"] = True
            full = full & np.tril(np.ones((t_len, s_len), bool))
        out, probs = layer(query, value, attention_mask=mask,
                           return_attention_scores=True, **kwargs)
        probs = to_numpy(probs)
        assert np.all(np.isfinite(to_numpy(out))), (case, name)
        assert np.all(probs[~full] == 0.0), (case, name, cls.__name__)
        rows = full.any(-1)
        if issubclass(cls, NeuralAttention):
            np.testing.assert_allclose(probs.sum(-1)[rows], 1.0, atol=1e-5)
        np.testing.assert_array_equal(probs.sum(-1)[~rows], 0.0)
        checked += int((~full).sum())
    assert checked > 500
    print(f"[{BACKEND}] masked-key checks: {checked} in {PROPERTY_CASES} "
          "random cases")


# ----------------------------------------------------------------------
# Inputs that MultiHeadAttention would pass on to a backend error
# ----------------------------------------------------------------------


@pytest.mark.parametrize("cls", LAYER_CLASSES, ids=lambda c: c.__name__)
def test_integer_query_raises_type_error(cls):
    layer = make_layer(cls)
    with pytest.raises(TypeError, match="query"):
        layer(np.ones((B, T, 12), "int32"), np.ones((B, S, 12), "float32"))


@pytest.mark.parametrize("cls", [NeuralAttention, ExpressiveAttention],
                         ids=lambda c: c.__name__)
def test_mismatched_batch_and_changed_features_raise_value_error(cls):
    layer = make_layer(cls)
    with pytest.raises(ValueError, match="batch size"):
        layer(np.ones((2, T, 12), "float32"), np.ones((3, S, 12), "float32"))
    layer(np.ones((2, T, 12), "float32"), np.ones((2, S, 12), "float32"))
    with pytest.raises(ValueError, match="features"):
        layer(np.ones((2, T, 10), "float32"), np.ones((2, S, 12), "float32"))
    with pytest.raises(ValueError, match="rank"):
        layer(np.ones((2, 3, T, 12), "float32"),
              np.ones((2, 3, T, 12), "float32"))
