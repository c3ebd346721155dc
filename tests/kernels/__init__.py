"""Tests of the fused attention kernels."""
