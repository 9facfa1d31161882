"""Event-driven convolution / pooling scatter == dense clock-driven correlation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.models import reference_conv as ref
from spikegate.models.kernels import conv, pool
from spikegate.models.kernels.conv import ConvGeometry, ConvGeometryError, conv_output_size


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sy, sx = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dy, dx = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    py, px = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    h = draw(st.integers(max(1, dy * (kh - 1) + 1 - 2 * py), 12))
    w = draw(st.integers(max(1, dx * (kw - 1) + 1 - 2 * px), 12))
    seed = draw(st.integers(0, 2**31))
    return groups, c_in, c_out, (kh, kw), (sy, sx), (dy, dx), (py, px), (h, w), seed


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_conv2d_scatter_equals_dense_correlation(case):
    groups, c_in, c_out, (kh, kw), (sy, sx), (dy, dx), (py, px), (h, w), seed = case
    rng = np.random.default_rng(seed)
    h_out = conv_output_size(h, kh, sy, py, py, dy)
    w_out = conv_output_size(w, kw, sx, px, px, dx)
    geometry = ConvGeometry(c_in, h, w, c_out, h_out, w_out, kh, kw, sy, sx, py, px, dy, dx,
                            groups)
    weight = rng.normal(size=geometry.weight_shape)
    counts = rng.integers(0, 3, size=(c_in, h, w)) * (rng.random((c_in, h, w)) < 0.3)
    src = np.flatnonzero(counts)
    acc, touched, n_synops = conv.scatter_conv(geometry, weight, src, counts.ravel()[src])
    dense = ref.correlate2d(counts.astype(float), weight, (sy, sx), (py, px), (dy, dx), groups)
    np.testing.assert_allclose(acc.reshape(dense.shape), dense, atol=1e-12)
    # touched is exactly the set of outputs the inputs reach (weights all nonzero a.s.)
    reach = ref.correlate2d((counts > 0).astype(float), np.ones_like(weight), (sy, sx), (py, px),
                            (dy, dx), groups)
    assert sorted(touched.tolist()) == np.flatnonzero(reach).tolist()
    assert len(set(touched.tolist())) == touched.size
    assert n_synops == int(reach.sum())


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2),
       st.integers(1, 2), st.integers(5, 12), st.integers(0, 2**31))
def test_conv1d_scatter_equals_dense_correlation(groups, k, stride, pad, dil, length, seed):
    rng = np.random.default_rng(seed)
    c_in, c_out = 2 * groups, 3 * groups
    length = max(length, dil * (k - 1) + 1)
    l_out = conv_output_size(length, k, stride, pad, pad, dil)
    geometry = ConvGeometry(c_in, 1, length, c_out, 1, l_out, 1, k, 1, stride, 0, pad, 1, dil,
                            groups)
    weight = rng.normal(size=(c_out, c_in // groups, k))
    x = (rng.random((c_in, length)) < 0.4).astype(float)
    src = np.flatnonzero(x)
    acc, _, _ = conv.scatter_conv(geometry, weight[:, :, None, :], src)
    dense = ref.correlate1d(x, weight, stride, pad, dil, groups)
    np.testing.assert_allclose(acc.reshape(dense.shape), dense, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
       st.integers(1, 3), st.integers(0, 1), st.integers(0, 1), st.integers(3, 9),
       st.integers(3, 9), st.integers(0, 2**31))
def test_pool_scatter_equals_dense_pooling(c, kh, kw, sy, sx, py, px, h, w, seed):
    py, px = min(py, kh // 2), min(px, kw // 2)  # PyTorch: padding ≤ kernel / 2
    rng = np.random.default_rng(seed)
    geometry = pool.pool_geometry(c, h, w, kh, kw, sy, sx, py, px)
    counts = rng.integers(0, 4, size=(c, h, w)) * (rng.random((c, h, w)) < 0.5)
    src = np.flatnonzero(counts)
    summed, _, _ = pool.scatter_pool(geometry, 1.0, src, counts.ravel()[src])
    dense = ref.sum_pool2d(counts.astype(float), (kh, kw), (sy, sx), (py, px))
    np.testing.assert_allclose(summed.reshape(dense.shape), dense, atol=1e-12)
    averaged, _, _ = pool.scatter_pool(geometry, 1.0 / (kh * kw), src, counts.ravel()[src])
    dense = ref.avg_pool2d(counts.astype(float), (kh, kw), (sy, sx), (py, px))
    np.testing.assert_allclose(averaged.reshape(dense.shape), dense, atol=1e-12)


def test_pool_is_depthwise_conv_with_constant_kernel():
    geometry = pool.pool_geometry(3, 8, 8, 2, 2, 2, 2)
    src = np.arange(geometry.n_in)
    pooled, _, _ = pool.scatter_pool(geometry, 1.0, src)
    conved, _, _ = conv.scatter_conv(geometry, np.ones(geometry.weight_shape), src)
    np.testing.assert_array_equal(pooled, conved)


def test_flatten_reference_merges_dims():
    x = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    assert ref.flatten(x).shape == (24,)
    assert ref.flatten(x, 1).shape == (2, 12)
    np.testing.assert_array_equal(ref.flatten(x).ravel(), x.ravel())


def test_bad_geometry_is_refused_with_a_sentence():
    with pytest.raises(ConvGeometryError, match="groups = 2 must divide c_in = 3"):
        ConvGeometry(3, 4, 4, 4, 4, 4, 3, 3, groups=2)
    geometry = ConvGeometry(1, 4, 4, 1, 2, 2, 3, 3)
    with pytest.raises(ConvGeometryError, match="weight shape"):
        conv.scatter_conv(geometry, np.ones((1, 1, 2, 2)), np.array([0]))
    with pytest.raises(ConvGeometryError, match="input indices"):
        conv.scatter_conv(geometry, np.ones((1, 1, 3, 3)), np.array([16]))


def test_warm_up_compiles():
    conv.warm_up()
    pool.warm_up()


def _run_steps(kernel, geometry, param, in_step, in_idx, in_val):
    cap = conv.output_capacity(geometry, in_step)
    out = (np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap))
    acc = np.zeros(geometry.n_out)
    mark = np.zeros(geometry.n_out, np.uint8)
    counters = np.zeros(1, np.int64)
    n = kernel(in_step, in_idx, in_val, geometry.as_array(), param, acc, mark,
               np.empty(geometry.n_out, np.int64), *out, counters)
    assert not acc.any() and not mark.any()  # left clean for the next call
    return out[0][:n], out[1][:n], out[2][:n], int(counters[0])


@settings(max_examples=30, deadline=None)
@given(conv_cases(), st.integers(1, 5))
def test_conv_steps_equal_dense_correlation_per_step(case, n_steps):
    groups, c_in, c_out, (kh, kw), (sy, sx), (dy, dx), (py, px), (h, w), seed = case
    rng = np.random.default_rng(seed)
    geometry = ConvGeometry(c_in, h, w, c_out, conv_output_size(h, kh, sy, py, py, dy),
                            conv_output_size(w, kw, sx, px, px, dx), kh, kw, sy, sx, py, px,
                            dy, dx, groups)
    weight = rng.normal(size=geometry.weight_shape)
    frames = (rng.random((n_steps, c_in, h, w)) < 0.2) * rng.integers(1, 3, (n_steps, c_in, h, w))
    in_step, flat = np.nonzero(frames.reshape(n_steps, -1))
    in_val = frames.reshape(n_steps, -1)[in_step, flat].astype(float)
    steps, idx, val, _ = _run_steps(conv.scatter_steps, geometry, weight.ravel(),
                                    in_step.astype(np.int64), flat.astype(np.int64), in_val)
    got = np.zeros((n_steps, geometry.n_out))
    np.add.at(got, (steps, idx), val)
    assert len(set(zip(steps.tolist(), idx.tolist(), strict=True))) == steps.size
    for k in range(n_steps):
        dense = ref.correlate2d(frames[k].astype(float), weight, (sy, sx), (py, px), (dy, dx),
                                groups)
        np.testing.assert_allclose(got[k], dense.ravel(), atol=1e-12)


def test_pool_steps_equal_dense_pooling_per_step():
    rng = np.random.default_rng(3)
    geometry = pool.pool_geometry(4, 8, 8, 2, 2, 2, 2)
    frames = (rng.random((6, 4, 8, 8)) < 0.3).astype(float)
    in_step, flat = np.nonzero(frames.reshape(6, -1))
    steps, idx, val, synops = _run_steps(conv.scatter_steps, geometry, 0.25,
                                         in_step.astype(np.int64), flat.astype(np.int64),
                                         np.ones(flat.size))
    got = np.zeros((6, geometry.n_out))
    np.add.at(got, (steps, idx), val)
    for k in range(6):
        np.testing.assert_allclose(got[k], ref.avg_pool2d(frames[k], (2, 2), (2, 2)).ravel())
    assert synops == flat.size
