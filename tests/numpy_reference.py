"""An independent NumPy implementation of Neural Attention.

Written from the authors' released code (`Models/NeuralAttention.py`, see
shared notes): per head, q and k are down-projected (`q_proj`, `k_proj`),
every (i, j) pair is concatenated `[q'_i ; k'_j]` and passed through
`linear1 -> act -> linear2 -> act -> ... -> linear_out`, giving a raw,
unscaled score; masked pairs are excluded from the softmax; rows without any
kept pair are zero; the output is `softmax(s) @ v`, heads are merged and
projected. Loops over heads and pairs on purpose: no broadcasting tricks
shared with the package.
"""

import numpy as np


def relu(x):
    return np.maximum(x, 0.0)


def score_matrix(q, k, weights, head, activation=relu):
    """Scores (T, S) of one head. q: (T, key_dim), k: (S, key_dim).

    `weights` is a dict of NumPy arrays with the layer's variable names.
    """

    def pick(name, shared_rank):
        w = weights[name]
        return w[head] if w.ndim == shared_rank + 1 else w

    qp = q @ pick("score_query_kernel", 2) + pick("score_query_bias", 1)
    kp = k @ pick("score_key_kernel", 2) + pick("score_key_bias", 1)
    num_hidden = len([n for n in weights if n.startswith("score_hidden_kernel")])
    scores = np.zeros((q.shape[0], k.shape[0]))
    for i in range(q.shape[0]):
        for j in range(k.shape[0]):
            h = np.concatenate([qp[i], kp[j]])
            for layer in range(num_hidden):
                h = activation(
                    h @ pick(f"score_hidden_kernel_{layer}", 2)
                    + pick(f"score_hidden_bias_{layer}", 1)
                )
            scores[i, j] = (
                h @ pick("score_output_kernel", 2) + pick("score_output_bias", 1)
            )[0]
    return scores


def masked_softmax(scores, mask=None):
    if mask is None:
        mask = np.ones_like(scores, dtype=bool)
    out = np.zeros_like(scores)
    for i in range(scores.shape[0]):
        keep = mask[i]
        if keep.any():
            row = scores[i][keep]
            e = np.exp(row - row.max())
            out[i][keep] = e / e.sum()
    return out


def attention_heads(query, key, value, weights, mask=None, activation=relu):
    """Multi-head attention on projected tensors.

    query (B, T, N, Dk), key (B, S, N, Dk), value (B, S, N, Dv), mask
    (B or 1, T, S) boolean or None. Returns output (B, T, N, Dv) and
    probabilities (B, N, T, S).
    """
    b_size, t_len, heads, _ = query.shape
    s_len, dv = key.shape[1], value.shape[-1]
    out = np.zeros((b_size, t_len, heads, dv))
    probs = np.zeros((b_size, heads, t_len, s_len))
    for b in range(b_size):
        m = None
        if mask is not None:
            m = mask[b if mask.shape[0] > 1 else 0]
        for n in range(heads):
            s = score_matrix(query[b, :, n], key[b, :, n], weights, n,
                             activation)
            p = masked_softmax(s, m)
            probs[b, n] = p
            out[b, :, n] = p @ value[b, :, n]
    return out, probs


def layer_forward(layer_weights, query, value, key=None, mask=None,
                  activation=relu):
    """Full layer: dense projections, attention, output projection.

    `layer_weights` maps variable paths ending in `query/kernel`,
    `query/bias`, ..., `attention_output/bias` and the scoring weight names
    to NumPy arrays.
    """
    key = value if key is None else key

    def get(suffix):
        matches = [v for n, v in layer_weights.items() if n.endswith(suffix)]
        assert len(matches) == 1, (suffix, list(layer_weights))
        return matches[0]

    q = np.einsum("btd,dnh->btnh", query, get("query/kernel")) + get(
        "query/bias"
    )
    k = np.einsum("bsd,dnh->bsnh", key, get("key/kernel")) + get("key/bias")
    v = np.einsum("bsd,dnh->bsnh", value, get("value/kernel")) + get(
        "value/bias"
    )
    scoring = {
        n.split("/")[-1]: w
        for n, w in layer_weights.items()
        if n.split("/")[-1].startswith("score_")
    }
    heads_out, probs = attention_heads(q, k, v, scoring, mask, activation)
    out = np.einsum(
        "btnh,nhd->btd", heads_out, get("attention_output/kernel")
    ) + get("attention_output/bias")
    return out, probs
