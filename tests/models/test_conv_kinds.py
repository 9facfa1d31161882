"""Conv / pool / flatten nodes: NIR import and export, refusals, and in a running network."""

from __future__ import annotations

import contextlib

import nir
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.models import graph
from spikegate.models import reference_conv as ref
from spikegate.models.network import Network
from spikegate.models.profiles import make_profile


def conv_net(
    *, c_in=2, h=9, w=8, c_out=4, k=3, stride=1, padding=1, dilation=1, groups=1,
    pool="sum", seed=0, bias=0.0,
) -> tuple[nir.NIRGraph, np.ndarray]:
    """Input → Conv2d → IF → pool(2) → Flatten → Affine → IF → Output."""
    rng = np.random.default_rng(seed)
    weight = rng.normal(0.2, 0.6, size=(c_out, c_in // groups, k, k))
    conv = nir.Conv2d(input_shape=(h, w), weight=weight, stride=stride, padding=padding,
                      dilation=dilation, groups=groups, bias=np.full(c_out, bias))
    _, ho, wo = conv.output_type["output"]
    pool_cls = nir.SumPool2d if pool == "sum" else nir.AvgPool2d
    pooled = (c_out, (ho - 2) // 2 + 1, (wo - 2) // 2 + 1)
    n_flat = int(np.prod(pooled))

    def if_node(shape):
        return nir.IF(r=np.ones(shape), v_threshold=np.ones(shape), v_reset=np.zeros(shape))

    nodes = {
        "input": nir.Input(input_type={"input": np.array([c_in, h, w])}),
        "conv": conv,
        "if1": if_node((c_out, ho, wo)),
        "pool": pool_cls(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                         padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array(pooled)}, start_dim=0),
        "fc": nir.Affine(weight=rng.normal(0.1, 0.5, size=(5, n_flat)), bias=np.zeros(5)),
        "if2": if_node((5,)),
        "output": nir.Output(output_type={"output": np.array([5])}),
    }
    edges = [("input", "conv"), ("conv", "if1"), ("if1", "pool"), ("pool", "flat"),
             ("flat", "fc"), ("fc", "if2"), ("if2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), weight


def reference_run(g: nir.NIRGraph, x: np.ndarray, sinabs: bool) -> dict[str, np.ndarray]:
    """The same graph, clock-driven, dense: correlate, IF, pool, affine, IF."""
    conv, pool, fc = g.nodes["conv"], g.nodes["pool"], g.nodes["fc"]
    pool_fn = ref.sum_pool2d if isinstance(pool, nir.SumPool2d) else ref.avg_pool2d
    v1 = v2 = None
    out = {"if1": [], "if2": []}

    def if_step(v, inp):
        v = v + inp
        if sinabs:
            z = np.where(v >= 1.0, np.floor(v), 0.0)
            v = np.maximum(v - z, -1.0)
        else:
            z = (v > 1.0).astype(float)
            v = np.where(z > 0, 0.0, v)
        return v, z

    for frame in x:
        c = ref.correlate2d(frame, conv.weight, tuple(conv.stride), tuple(conv.padding),
                            tuple(conv.dilation), int(conv.groups), conv.bias)
        v1 = np.zeros_like(c) if v1 is None else v1
        v1, z1 = if_step(v1, c)
        p = ref.flatten(pool_fn(z1, (2, 2), (2, 2)))
        a = fc.weight @ p + fc.bias
        v2 = np.zeros_like(a) if v2 is None else v2
        v2, z2 = if_step(v2, a)
        out["if1"].append(z1)
        out["if2"].append(z2)
    return {k: np.array(v) for k, v in out.items()}


@settings(max_examples=15, deadline=None)
@given(
    st.sampled_from(["norse", "sinabs"]),
    st.sampled_from(["sum", "avg"]),
    st.integers(1, 2), st.integers(0, 2), st.integers(1, 2), st.sampled_from([1, 2]),
    st.integers(0, 2**31),
)
def test_conv_network_event_driven_equals_reference(profile, pool, stride, padding, dilation,
                                                    groups, seed):
    g, _ = conv_net(stride=stride, padding=padding, dilation=dilation, groups=groups, pool=pool,
                    seed=seed)
    rng = np.random.default_rng(seed)
    x = (rng.random((25, 2, 9, 8)) < 0.25).astype(float)
    net = Network(graph.from_nir(g), make_profile(profile, dt_s=1e-3))
    got = net.run(x, record=["if1", "if2"])
    want = reference_run(g, x, sinabs=profile == "sinabs")
    np.testing.assert_array_equal(got["if1"], want["if1"])
    np.testing.assert_array_equal(got["if2"], want["if2"])


def test_conv_bias_is_a_constant_drive():
    g, _ = conv_net(bias=0.3, seed=4)
    x = np.zeros((12, 2, 9, 8))
    net = Network(graph.from_nir(g), make_profile("norse", dt_s=1e-3))
    got = net.run(x, record=["if1"])
    want = reference_run(g, x, sinabs=False)
    assert want["if1"].sum() > 0  # bias alone drives the IF layer over threshold
    np.testing.assert_array_equal(got["if1"], want["if1"])


@pytest.mark.parametrize("padding", [0, 2, "same", "valid"])
def test_conv1d_and_conv2d_round_trip_through_a_file(tmp_path, padding):
    rng = np.random.default_rng(0)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([4, 16])}),
        "c1": nir.Conv1d(input_shape=16, weight=rng.normal(size=(6, 2, 3)), stride=1,
                         padding=padding, dilation=2, groups=2, bias=rng.normal(size=6)),
        "if": None,
        "output": None,
    }
    shape = tuple(int(s) for s in nodes["c1"].output_type["output"])
    nodes["if"] = nir.IF(r=np.ones(shape), v_threshold=np.ones(shape), v_reset=np.zeros(shape))
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "c1"), ("c1", "if"), ("if", "output")],
                     type_check=False)
    first = graph.from_nir(g)
    path = tmp_path / "c1.nir"
    graph.save_graph(first, path)
    again = graph.load_graph(path)
    a, b = first.layer("c1"), again.layer("c1")
    assert a.kind == b.kind == "conv1d"
    assert a.output_shape == b.output_shape == shape
    assert a.params.geometry == b.params.geometry
    np.testing.assert_array_equal(a.params.weight, b.params.weight)


def test_cnn_shapes_survive_a_file_round_trip(tmp_path):
    g = graph.from_nir(conv_net(stride=2, pool="avg")[0])
    path = tmp_path / "cnn.nir"
    graph.save_graph(g, path)
    again = graph.load_graph(path)  # the file keeps no pooling shape: inferred on load
    assert [(la.name, la.kind, la.output_shape) for la in g.layers] == [
        (la.name, la.kind, la.output_shape) for la in again.layers
    ]
    assert again.layer("pool").params.scale == 0.25


def test_bad_conv_nodes_are_refused_by_name():
    g, _ = conv_net()
    g.nodes["conv"].groups = 3
    with pytest.raises(graph.GraphError, match="node 'conv': groups = 3"):
        graph.from_nir(g)
    g, _ = conv_net()
    g.nodes["conv"].weight = np.full((4, 2, 3, 3), np.nan)
    with pytest.raises(graph.GraphError, match=r"'conv'.*NaN"):
        graph.from_nir(g)
    g, _ = conv_net()
    g.nodes["conv"].input_shape = (2, 2)
    g.nodes["conv"].padding = (0, 0)
    with pytest.raises(graph.GraphError, match="node 'conv': kernel"):
        graph.from_nir(g)
    g, _ = conv_net()
    g.nodes["conv"].padding = "same"
    g.nodes["conv"].stride = (2, 2)
    with pytest.raises(graph.GraphError, match="'same' needs stride 1"):
        graph.from_nir(g)


def test_flatten_with_a_batch_counted_start_dim_is_read():
    node = nir.Flatten(input_type={"input": np.array([128])}, start_dim=1)
    _, in_shape, out_shape = graph.KINDS["flatten"].read("flat", node)
    assert in_shape == out_shape == (128,)


@settings(max_examples=10, deadline=None)
@given(st.sampled_from(["exact", "snntorch", "norse", "sinabs"]), st.integers(0, 2**31))
def test_conv_network_equals_run_reference(profile, seed):
    """The project-wide clock-driven reference (models.reference) runs conv graphs too."""
    from spikegate.models.reference import run_reference

    g = graph.from_nir(conv_net(stride=2, padding=1, groups=2, pool="avg", seed=seed,
                                bias=0.05)[0])
    rng = np.random.default_rng(seed)
    x = (rng.random((20, 2, 9, 8)) < 0.3).astype(float)
    prof = make_profile(profile, dt_s=1e-3)
    got = Network(g, prof).run(x, record=["if1", "if2"])
    want = run_reference(g, prof, x)
    np.testing.assert_array_equal(got["if1"], want["if1"])
    np.testing.assert_array_equal(got["if2"], want["if2"])


def test_a_huge_declared_shape_is_refused_before_any_allocation():
    g, _ = conv_net()
    g.nodes["conv"].input_shape = (100_000, 100_000)
    with pytest.raises(graph.GraphError, match=r"node .conv.: Conv2d of shape .* limit"):
        graph.from_nir(g)
    node = nir.Flatten(input_type={"input": np.array([4096, 4096, 16])}, start_dim=0)
    with pytest.raises(graph.GraphError, match=r"node .flat.: Flatten .* limit"):
        graph.KINDS["flatten"].read("flat", node)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("stride", (0, 1), "stride"),
        ("dilation", (1, 0), "dilation"),
        ("padding", (-1, 0), "negative padding"),
        ("weight", np.zeros((4, 2, 0, 3)), "kernel"),
        ("padding", "full", "not 'same' or 'valid'"),
    ],
)
def test_corrupt_conv_fields_are_refused_by_name(field, value, message):
    g, _ = conv_net()
    setattr(g.nodes["conv"], field, value)
    with pytest.raises(graph.GraphError, match=f"node 'conv'.*{message}"):
        graph.from_nir(g)


@settings(max_examples=60, deadline=None)
@given(
    st.tuples(st.integers(-2, 4), st.integers(-2, 4)),
    st.one_of(st.tuples(st.integers(-2, 6), st.integers(-2, 6)), st.sampled_from(["same", "x"])),
    st.tuples(st.integers(-1, 4), st.integers(-1, 4)),
    st.integers(-1, 5),
    st.tuples(st.integers(-3, 10**6), st.integers(-3, 40)),
)
def test_any_conv_field_values_load_or_raise_graph_error(stride, padding, dilation, groups,
                                                         input_shape):
    g, _ = conv_net()
    node = g.nodes["conv"]
    node.stride, node.padding, node.dilation = stride, padding, dilation
    node.groups, node.input_shape = groups, input_shape
    with contextlib.suppress(graph.GraphError):
        graph.from_nir(g)
