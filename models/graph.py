"""NIR graph → a frozen, validated, flat description of layers and edges (the spec is data).

``load_graph(path)`` reads a ``.nir`` file with the ``nir`` package and returns a
``Graph``: its ``layers`` in topological order (recurrent edges removed for the
ordering), each a ``Layer`` holding one small frozen dataclass of read-only
float64 numpy arrays (``params``); its ``edges``, with the edges that close a
cycle marked ``recurrent`` (they deliver the source's output one step later);
nested subgraphs are inlined, their nodes named ``outer.inner``.

Anything the core can't run is refused here with a ``GraphError`` naming the
node and why. ``to_nir(graph)`` exports back to a ``nir.NIRGraph``.

Adding a node kind: a params dataclass, one ``register_kind`` call with an
importer (nir node → params, shapes) and an exporter (params → nir node).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nir
import numpy as np


class GraphError(ValueError):
    """A graph the core can't run: the message names the file or node and why."""


# ---------------------------------------------------------------- parameters
# One frozen dataclass per node kind; every field is a float64 numpy array
# (made read-only). Neuron parameters are broadcast to the layer's shape.


@dataclass(frozen=True)
class NoParams:
    """Input, Output, Flatten-like nodes: no arrays."""


@dataclass(frozen=True)
class AffineParams:
    """y = weight @ x + bias; weight (n_out, n_in), bias (n_out,)."""

    weight: np.ndarray
    bias: np.ndarray


@dataclass(frozen=True)
class LinearParams:
    """y = weight @ x; weight (n_out, n_in)."""

    weight: np.ndarray


@dataclass(frozen=True)
class ScaleParams:
    """y = scale * x, elementwise."""

    scale: np.ndarray


@dataclass(frozen=True)
class ThresholdParams:
    """z = H(x - threshold), stateless."""

    threshold: np.ndarray


@dataclass(frozen=True)
class IFParams:
    """dv/dt = r·I; z = H(v - v_threshold); v ← v_reset on a spike."""

    r: np.ndarray
    v_threshold: np.ndarray
    v_reset: np.ndarray


@dataclass(frozen=True)
class LIParams:
    """τ dv/dt = (v_leak - v) + r·I; output v."""

    tau: np.ndarray
    r: np.ndarray
    v_leak: np.ndarray


@dataclass(frozen=True)
class LIFParams:
    """τ dv/dt = (v_leak - v) + r·I; z = H(v - v_threshold); v ← v_reset on a spike."""

    tau: np.ndarray
    r: np.ndarray
    v_leak: np.ndarray
    v_threshold: np.ndarray
    v_reset: np.ndarray


@dataclass(frozen=True)
class CubaLIParams:
    """τ_syn dI/dt = -I + w_in·x; τ_mem dv/dt = (v_leak - v) + r·I; output v."""

    tau_syn: np.ndarray
    tau_mem: np.ndarray
    r: np.ndarray
    v_leak: np.ndarray
    w_in: np.ndarray


@dataclass(frozen=True)
class CubaLIFParams:
    """CubaLI plus z = H(v - v_threshold); v ← v_reset on a spike."""

    tau_syn: np.ndarray
    tau_mem: np.ndarray
    r: np.ndarray
    v_leak: np.ndarray
    v_threshold: np.ndarray
    v_reset: np.ndarray
    w_in: np.ndarray


@dataclass(frozen=True)
class IntegratorParams:
    """dv/dt = r·I; output v (NIR's ``I`` node)."""

    r: np.ndarray


@dataclass(frozen=True)
class DelayParams:
    """y(t) = x(t - delay), elementwise; delay in seconds."""

    delay: np.ndarray


# ---------------------------------------------------------------- graph


@dataclass(frozen=True, eq=False)
class Layer:
    """One node: its name, kind (a key of ``KINDS``), params and shapes."""

    name: str
    kind: str
    params: Any
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape, dtype=np.int64))

    @property
    def output_size(self) -> int:
        return int(np.prod(self.output_shape, dtype=np.int64))


@dataclass(frozen=True)
class Edge:
    """source → target; ``recurrent`` edges close a cycle (delivered one step later)."""

    source: str
    target: str
    recurrent: bool = False


@dataclass(frozen=True, eq=False)
class Graph:
    """Layers in topological order, edges, and the names of inputs and outputs."""

    layers: tuple[Layer, ...]
    edges: tuple[Edge, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def index(self, name: str) -> int:
        for i, layer in enumerate(self.layers):
            if layer.name == name:
                return i
        raise KeyError(name)

    def incoming(self, name: str) -> tuple[Edge, ...]:
        return tuple(e for e in self.edges if e.target == name)

    def outgoing(self, name: str) -> tuple[Edge, ...]:
        return tuple(e for e in self.edges if e.source == name)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.layer(self.inputs[0]).output_shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layer(self.outputs[0]).input_shape


# ---------------------------------------------------------------- kind registry

Importer = Callable[[str, Any], tuple[Any, tuple[int, ...], tuple[int, ...]]]
Exporter = Callable[[Layer], Any]


@dataclass(frozen=True)
class Kind:
    """How a node kind is read from and written to NIR."""

    name: str
    nir_type: type
    read: Importer
    write: Exporter
    # neurons keep state and emit spikes or v; the rest are linear maps / routing
    is_neuron: bool = False


KINDS: dict[str, Kind] = {}
# Called as hook(nodes, edges) on the inlined graph before its nodes are read:
# fills in shapes NIR files leave out (pooling nodes store no input_type).
SHAPE_HOOKS: list[Callable[[dict[str, Any], list[tuple[str, str]]], None]] = []
_BY_NIR_TYPE: dict[type, str] = {}


def register_kind(kind: Kind) -> None:
    """Make ``kind`` readable and writable (one call per node kind)."""
    KINDS[kind.name] = kind
    _BY_NIR_TYPE[kind.nir_type] = kind.name


def as_param(node_name: str, field_name: str, value: Any, *, allow_inf: bool = False) -> np.ndarray:
    """``value`` as a read-only float64 array; refuses NaN (and ±inf unless allowed)."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GraphError(
            f"node {node_name!r}: field {field_name!r} is not numeric ({exc})"
        ) from None
    if np.isnan(arr).any():
        raise GraphError(f"node {node_name!r}: field {field_name!r} contains NaN")
    if not allow_inf and np.isinf(arr).any():
        raise GraphError(f"node {node_name!r}: field {field_name!r} contains ±inf")
    arr.setflags(write=False)
    return arr


def _declared_shape(node: Any, key: str) -> tuple[int, ...] | None:
    types = getattr(node, key, None) or {}
    for value in types.values():
        if value is None:
            continue
        arr = np.asarray(value).reshape(-1)
        if arr.size and np.issubdtype(arr.dtype, np.number) and (arr > 0).all():
            return tuple(int(v) for v in arr)
    return None


def _neuron_shape(name: str, node: Any, arrays: Mapping[str, np.ndarray]) -> tuple[int, ...]:
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{k}{a.shape}" for k, a in arrays.items())
        raise GraphError(f"node {name!r}: parameter shapes don't match ({shapes})") from None
    declared = _declared_shape(node, "input_type")
    if shape == () and declared is not None:
        shape = declared
    if shape == ():
        shape = (1,)
    return tuple(int(s) for s in shape)


def _make_neuron_kind(
    kind_name: str,
    nir_type: type,
    params_type: type,
    nir_fields: Mapping[str, str],
    *,
    inf_ok: frozenset[str] = frozenset({"tau", "tau_mem", "tau_syn", "v_threshold"}),
    positive: frozenset[str] = frozenset({"tau", "tau_mem", "tau_syn"}),
) -> Kind:
    """A neuron kind whose params are NIR fields broadcast to one shape."""

    def read(name: str, node: Any) -> tuple[Any, tuple[int, ...], tuple[int, ...]]:
        raw: dict[str, np.ndarray] = {}
        for ours, theirs in nir_fields.items():
            value = getattr(node, theirs, None)
            if value is None and ours == "v_reset":
                value = 0.0
            if value is None:
                raise GraphError(f"node {name!r} ({kind_name}): missing field {theirs!r}")
            raw[ours] = as_param(name, theirs, value, allow_inf=ours in inf_ok)
        shape = _neuron_shape(name, node, raw)
        out: dict[str, np.ndarray] = {}
        n = int(np.prod(shape))
        for key, arr in raw.items():
            if arr.size == 1:
                full = np.full(shape, float(arr.reshape(-1)[0]))
            elif arr.size == n:
                full = np.array(arr, dtype=np.float64).reshape(shape)
            else:
                raise GraphError(
                    f"node {name!r}: field {key!r} has {arr.size} values, the layer {shape}"
                )
            if key in positive and not (full > 0).all():
                raise GraphError(f"node {name!r}: field {key!r} must be > 0")
            full.setflags(write=False)
            out[key] = full
        return params_type(**out), shape, shape

    def write(layer: Layer) -> Any:
        p = layer.params
        fields = {theirs: np.array(getattr(p, ours)) for ours, theirs in nir_fields.items()}
        return nir_type(**fields)

    return Kind(kind_name, nir_type, read, write, is_neuron=True)


def _read_affine(name: str, node: Any) -> tuple[Any, tuple[int, ...], tuple[int, ...]]:
    weight = as_param(name, "weight", node.weight)
    bias = as_param(name, "bias", node.bias)
    if weight.ndim != 2:
        raise GraphError(f"node {name!r}: weight must be 2-D (n_out, n_in), got {weight.shape}")
    if bias.size == 1 and weight.shape[0] != 1:
        bias = np.full(weight.shape[0], float(bias.reshape(-1)[0]))
        bias.setflags(write=False)
    if bias.shape != (weight.shape[0],):
        raise GraphError(
            f"node {name!r}: bias shape {bias.shape} does not match weight {weight.shape}"
        )
    return AffineParams(weight, bias), (weight.shape[1],), (weight.shape[0],)


def _read_linear(name: str, node: Any) -> tuple[Any, tuple[int, ...], tuple[int, ...]]:
    weight = as_param(name, "weight", node.weight)
    if weight.ndim != 2:
        raise GraphError(f"node {name!r}: weight must be 2-D (n_out, n_in), got {weight.shape}")
    return LinearParams(weight), (weight.shape[1],), (weight.shape[0],)


def _read_elementwise(
    params_type: type, field_name: str, allow_inf: bool = False
) -> Importer:
    def read(name: str, node: Any) -> tuple[Any, tuple[int, ...], tuple[int, ...]]:
        arr = as_param(name, field_name, getattr(node, field_name), allow_inf=allow_inf)
        declared = _declared_shape(node, "input_type")
        shape = arr.shape if arr.ndim else (declared or (1,))
        if arr.ndim == 0:
            arr = np.full(shape, float(arr))
            arr.setflags(write=False)
        if field_name == "delay" and (arr < 0).any():
            raise GraphError(f"node {name!r}: delay must be ≥ 0")
        return params_type(arr), tuple(shape), tuple(shape)

    return read


def _read_io(key: str) -> Importer:
    def read(name: str, node: Any) -> tuple[Any, tuple[int, ...], tuple[int, ...]]:
        shape = _declared_shape(node, key)
        if shape is None:
            raise GraphError(f"node {name!r}: {key} has no valid shape")
        return NoParams(), shape, shape

    return read


register_kind(Kind("input", nir.Input, _read_io("input_type"),
                   lambda layer: nir.Input(input_type={"input": np.array(layer.output_shape)})))
register_kind(Kind("output", nir.Output, _read_io("output_type"),
                   lambda layer: nir.Output(output_type={"output": np.array(layer.input_shape)})))
register_kind(Kind("affine", nir.Affine, _read_affine,
                   lambda layer: nir.Affine(weight=np.array(layer.params.weight),
                                            bias=np.array(layer.params.bias))))
register_kind(Kind("linear", nir.Linear, _read_linear,
                   lambda layer: nir.Linear(weight=np.array(layer.params.weight))))
register_kind(Kind("scale", nir.Scale, _read_elementwise(ScaleParams, "scale"),
                   lambda layer: nir.Scale(scale=np.array(layer.params.scale))))
register_kind(Kind("threshold", nir.Threshold,
                   _read_elementwise(ThresholdParams, "threshold", allow_inf=True),
                   lambda layer: nir.Threshold(threshold=np.array(layer.params.threshold)),
                   is_neuron=True))
register_kind(Kind("delay", nir.Delay, _read_elementwise(DelayParams, "delay"),
                   lambda layer: nir.Delay(delay=np.array(layer.params.delay))))
register_kind(_make_neuron_kind("if", nir.IF, IFParams,
                                {"r": "r", "v_threshold": "v_threshold", "v_reset": "v_reset"}))
register_kind(_make_neuron_kind("li", nir.LI, LIParams,
                                {"tau": "tau", "r": "r", "v_leak": "v_leak"}))
register_kind(_make_neuron_kind(
    "lif", nir.LIF, LIFParams,
    {"tau": "tau", "r": "r", "v_leak": "v_leak", "v_threshold": "v_threshold",
     "v_reset": "v_reset"}))
register_kind(_make_neuron_kind(
    "cuba_li", nir.CubaLI, CubaLIParams,
    {"tau_syn": "tau_syn", "tau_mem": "tau_mem", "r": "r", "v_leak": "v_leak", "w_in": "w_in"}))
register_kind(_make_neuron_kind(
    "cuba_lif", nir.CubaLIF, CubaLIFParams,
    {"tau_syn": "tau_syn", "tau_mem": "tau_mem", "r": "r", "v_leak": "v_leak",
     "v_threshold": "v_threshold", "v_reset": "v_reset", "w_in": "w_in"}))
register_kind(_make_neuron_kind("integrator", nir.I, IntegratorParams, {"r": "r"}))


# ---------------------------------------------------------------- import


def load_graph(path: str | Path) -> Graph:
    """Read a ``.nir`` file into a validated ``Graph``; ``GraphError`` if it can't run."""
    import h5py  # nir's own dependency

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if "node" not in f:
                raise GraphError(f"{path.name}: not a NIR file (no 'node' group)")
            data = nir.serialization.hdf2dict(f["node"])
    except GraphError:
        raise
    except FileNotFoundError:
        raise GraphError(f"{path}: no such file") from None
    except Exception as exc:  # h5py raises many kinds on damaged files
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GraphError(f"{path.name}: corrupt or truncated NIR/HDF5 file ({first})") from None
    _check_types(path.name, data, prefix="")
    data.pop("type_check", None)
    try:
        data["type_check"] = False
        root = _node_from_dict(data)
    except GraphError:
        raise
    except Exception as exc:  # nir raises many kinds on malformed nodes
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GraphError(f"{path.name}: malformed NIR graph ({first})") from None
    return from_nir(root, source=path.name)


def _node_from_dict(data: Mapping[str, Any], name: str = "") -> Any:
    """``nir.dict2NIRNode``, plus extension kinds (a ``nir_type`` nir doesn't define)."""
    kind = data.get("type")
    if kind == "NIRGraph":
        nodes = {k: _node_from_dict(v, f"{name}.{k}" if name else k)
                 for k, v in data["nodes"].items()}
        edges = [(nir.ir.utils.ensure_str(a), nir.ir.utils.ensure_str(b)) for a, b in data["edges"]]
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(data.get("metadata") or {}),
                            type_check=False)
    extensions: dict[str, Any] = {k.nir_type.__name__: k.nir_type for k in KINDS.values()
                                  if not hasattr(nir, k.nir_type.__name__)}
    if kind in extensions:
        try:
            return extensions[kind].from_dict(dict(data))
        except (GraphError, ValueError, TypeError) as exc:
            raise GraphError(f"node {name!r}: {exc}") from None
    return nir.dict2NIRNode(dict(data))


def _check_types(source: str, data: Mapping[str, Any], prefix: str) -> None:
    """Refuse unknown node types by name before nir tries to build them."""
    known = {k.nir_type.__name__ for k in KINDS.values()} | {"NIRGraph"}
    if data.get("type") != "NIRGraph":
        raise GraphError(f"{source}: the top-level node is {data.get('type')!r}, not a NIRGraph")
    nodes = data.get("nodes", {})
    if not isinstance(nodes, Mapping):
        raise GraphError(f"{source}: graph {prefix or '<root>'!r} has no node table")
    for name, node in nodes.items():
        full = f"{prefix}{name}"
        kind = node.get("type") if isinstance(node, Mapping) else None
        if kind not in known:
            raise GraphError(
                f"{source}: node {full!r}: unsupported node type {kind!r} "
                f"(supported: {', '.join(sorted(known))})"
            )
        if kind == "NIRGraph":
            _check_types(source, node, prefix=f"{full}.")


def from_nir(root: Any, source: str = "graph") -> Graph:
    """Validate and flatten an in-memory ``nir.NIRGraph``."""
    if not isinstance(root, nir.NIRGraph):
        raise GraphError(f"{source}: expected a NIRGraph, got {type(root).__name__}")
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    _inline(source, root, "", nodes, edges, top=True)
    for hook in SHAPE_HOOKS:
        hook(nodes, edges)
    layers: dict[str, Layer] = {}
    for name, node in nodes.items():
        kind_name = _BY_NIR_TYPE.get(type(node))
        if kind_name is None:
            raise GraphError(
                f"{source}: node {name!r}: unsupported node type {type(node).__name__}"
            )
        params, in_shape, out_shape = KINDS[kind_name].read(name, node)
        layers[name] = Layer(name, kind_name, params, in_shape, out_shape,
                             dict(getattr(node, "metadata", {}) or {}))
    inputs = tuple(n for n, la in layers.items() if la.kind == "input")
    outputs = tuple(n for n, la in layers.items() if la.kind == "output")
    if not inputs:
        raise GraphError(f"{source}: graph has no Input node")
    if not outputs:
        raise GraphError(f"{source}: graph has no Output node")
    for a, b in edges:
        for end in (a, b):
            if end not in layers:
                raise GraphError(f"{source}: edge {a!r} → {b!r} names unknown node {end!r}")
        if layers[b].kind == "input":
            raise GraphError(f"{source}: edge {a!r} → {b!r} enters an Input node")
        if layers[a].kind == "output":
            raise GraphError(f"{source}: edge {a!r} → {b!r} leaves an Output node")
    # unknown-size nodes (Flatten-like routing with no own shape) are fixed by their kind
    for name, layer in layers.items():
        if layer.kind != "input" and not any(b == name for _, b in edges):
            raise GraphError(f"{source}: node {name!r} has no incoming edge")
    order, recurrent = _order(list(layers), edges, inputs)
    for a, b in edges:
        src, dst = layers[a], layers[b]
        if src.output_size != dst.input_size:
            raise GraphError(
                f"{source}: edge {a!r} → {b!r}: shape mismatch, {a!r} gives "
                f"{src.output_shape} but {b!r} takes {dst.input_shape}"
            )
    unique_edges = list(dict.fromkeys(edges))
    return Graph(
        layers=tuple(layers[n] for n in order),
        edges=tuple(Edge(a, b, (a, b) in recurrent) for a, b in unique_edges),
        inputs=inputs,
        outputs=outputs,
        metadata=dict(getattr(root, "metadata", {}) or {}),
    )


def _inline(
    source: str,
    graph: Any,
    prefix: str,
    nodes: dict[str, Any],
    edges: list[tuple[str, str]],
    top: bool,
) -> tuple[list[str], list[str]]:
    """Inline ``graph`` under ``prefix``; returns its entry and exit node names.

    Inner Input/Output nodes are contracted away (their neighbours connected).
    """
    local_in: dict[str, list[str]] = {}
    local_out: dict[str, list[str]] = {}
    for name, node in graph.nodes.items():
        full = f"{prefix}{name}"
        if isinstance(node, nir.NIRGraph):
            ins, outs = _inline(source, node, f"{full}.", nodes, edges, top=False)
            local_in[name], local_out[name] = ins, outs
        elif not top and isinstance(node, nir.Input | nir.Output):
            local_in[name], local_out[name] = [], []  # contracted below
        else:
            nodes[full] = node
            local_in[name], local_out[name] = [full], [full]
    # resolve edge endpoints: 'sub', 'sub.port' or a plain local node
    inner_edges: list[tuple[str, str]] = []
    for a, b in graph.edges:
        for x in _resolve(source, graph, prefix, a, local_out, "source"):
            for y in _resolve(source, graph, prefix, b, local_in, "target"):
                inner_edges.append((x, y))
    if top:
        edges.extend(inner_edges)
        return [], []
    # contract this graph's Input / Output nodes
    in_names = [f"{prefix}{n}" for n, v in graph.nodes.items() if isinstance(v, nir.Input)]
    out_names = [f"{prefix}{n}" for n, v in graph.nodes.items() if isinstance(v, nir.Output)]
    entries = [b for a, b in inner_edges if a in in_names]
    exits = [a for a, b in inner_edges if b in out_names]
    edges.extend((a, b) for a, b in inner_edges if a not in in_names and b not in out_names)
    return entries, exits


def _resolve(
    source: str, graph: Any, prefix: str, end: str, table: Mapping[str, list[str]], role: str
) -> list[str]:
    if end in graph.nodes:
        node = graph.nodes[end]
        if isinstance(node, nir.Input | nir.Output) and not table[end]:
            return [f"{prefix}{end}"]
        return table[end]
    head, _, port = end.partition(".")
    if head in graph.nodes and isinstance(graph.nodes[head], nir.NIRGraph):
        sub = graph.nodes[head]
        if port in sub.nodes and not isinstance(sub.nodes[port], nir.NIRGraph):
            return [f"{prefix}{head}.{port}"] if not isinstance(
                sub.nodes[port], nir.Input | nir.Output) else table[head]
        return table[head]
    raise GraphError(f"{source}: edge {role} {prefix}{end!r} names no node")


def _order(
    names: list[str], edges: list[tuple[str, str]], inputs: tuple[str, ...]
) -> tuple[list[str], set[tuple[str, str]]]:
    """Topological order of the forward edges; the edges closing a cycle (DFS back edges)."""
    children: dict[str, list[str]] = {n: [] for n in names}
    for a, b in edges:
        if b not in children[a]:
            children[a].append(b)
    state = dict.fromkeys(names, 0)  # 0 new, 1 on stack, 2 done
    postorder: list[str] = []
    recurrent: set[tuple[str, str]] = set()
    for root in list(inputs) + names:
        if state[root]:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, i = stack[-1]
            if i < len(children[node]):
                stack[-1] = (node, i + 1)
                child = children[node][i]
                if state[child] == 1:
                    recurrent.add((node, child))
                elif state[child] == 0:
                    state[child] = 1
                    stack.append((child, 0))
            else:
                state[node] = 2
                postorder.append(node)
                stack.pop()
    return postorder[::-1], recurrent


# ---------------------------------------------------------------- export


def to_nir(graph: Graph) -> nir.NIRGraph:
    """The graph as a ``nir.NIRGraph`` (nested subgraphs stay flattened)."""
    nodes = {layer.name: KINDS[layer.kind].write(layer) for layer in graph.layers}
    edges = [(e.source, e.target) for e in graph.edges]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(graph.metadata), type_check=False)


def save_graph(graph: Graph, path: str | Path) -> None:
    """Write ``graph`` as a ``.nir`` file."""
    nir.write(str(path), to_nir(graph))
