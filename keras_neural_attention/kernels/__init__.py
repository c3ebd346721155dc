"""Fused accelerator kernels for Neural Attention.

- `triton_neural_attention` (PyTorch + Triton) and `pallas_neural_attention`
  (JAX + Pallas) compute masked Neural Attention flash-style: neither
  materializes the `(T, S)` score matrix nor the `(T, S, hidden)` activations
  of the scoring network, in the forward or the backward pass.
- `dispatch` is the one entry point the `keras.ops` math uses: it decides
  whether a kernel can serve a call and runs it. It imports a kernel module
  only under that kernel's backend (importing Triton next to TensorFlow in
  one process can abort).
"""
