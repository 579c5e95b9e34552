"""Result objects of the reading calls.

Each result copies what it needs out of the C result at once (a few array copies,
whatever k is) and builds its items only when they are read. Attribute names are
the CLI's JSON field names, and ``to_json()`` gives the structure ``latentdb ...
--json`` prints for the same arguments.
"""
from __future__ import annotations

import ctypes as C
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union, overload

import numpy as np

from . import _ffi

try:  # optional
    import pandas as _pd  # type: ignore
except Exception:  # pragma: no cover - pandas is optional
    _pd = None


def _pandas():
    if _pd is None:
        raise ImportError("to_pandas() needs pandas (Debian: python3-pandas)")
    return _pd


_EX_DTYPE = np.dtype({
    "names": ["seq", "pos", "value", "ctx_start", "ctx_len", "tokens", "values"],
    "formats": [np.uint64, np.uint32, np.float32, np.uint32, np.uint32, np.uintp, np.uintp],
    "offsets": [getattr(_ffi.Example, f).offset for f in
                ("seq", "pos", "value", "ctx_start", "ctx_len", "tokens", "values")],
    "itemsize": C.sizeof(_ffi.Example),
})


class LatentRef:
    """How a latent is named in JSON: its global id, and for a multi-layer
    dictionary its layer and index in that layer."""
    __slots__ = ("latent", "layer", "index")

    def __init__(self, latent: int, layer: Optional[int] = None, index: Optional[int] = None):
        self.latent = latent
        self.layer = layer
        self.index = index

    def put(self, d: Dict[str, Any]) -> Dict[str, Any]:
        d["latent"] = self.latent
        if self.layer is not None:
            d["layer"] = self.layer
            d["index"] = self.index
        return d


class _Texted:
    """Text of a result's ``tokens`` through the database's tokenizer (None without one)."""
    tokens: np.ndarray
    _text: Any

    @property
    def text(self) -> Optional[str]:
        """The tokens decoded to text (None without a tokenizer)."""
        return self._text.decode(self.tokens) if self._text else None

    @property
    def pieces(self) -> Optional[List[str]]:
        """Each token as it reads in text (None without a tokenizer)."""
        return self._text.pieces(self.tokens) if self._text else None


class Context(_Texted):
    """The tokens around an example: positions [start, start + len(tokens)) of its
    sequence, the latent's value at each (0 where silent), and, when the database has a
    tokenizer, their text and pieces."""
    __slots__ = ("start", "tokens", "values", "_text")

    def __init__(self, start: int, tokens: np.ndarray, values: np.ndarray, text):
        self.start = start
        self.tokens = tokens
        self.values = values
        self._text = text

    def to_json(self) -> Dict[str, Any]:
        """The context as the CLI's JSON has it (text and pieces with a tokenizer)."""
        d: Dict[str, Any] = {"start": self.start, "tokens": self.tokens.tolist(),
                             "values": [float(v) for v in self.values]}
        if self._text:
            d["text"] = self.text
            d["pieces"] = self.pieces
        return d

    def __repr__(self) -> str:
        return f"Context(start={self.start}, tokens={self.tokens.tolist()})"


class Example:
    """One firing position: sequence ``seq``, position ``pos``, the stored ``value``,
    and its ``context`` (None when positions only were asked for)."""
    __slots__ = ("seq", "pos", "value", "context")

    def __init__(self, seq: int, pos: int, value: float, context: Optional[Context]):
        self.seq = seq
        self.pos = pos
        self.value = value
        self.context = context

    def to_json(self) -> Dict[str, Any]:
        """The example as the CLI's JSON has it."""
        d: Dict[str, Any] = {"seq": self.seq, "pos": self.pos, "value": self.value}
        if self.context is not None:
            d["context"] = self.context.to_json()
        return d

    def __repr__(self) -> str:
        return f"Example(seq={self.seq}, pos={self.pos}, value={self.value:g})"


class ExampleList(Sequence[Example]):
    """Examples, best first: indexable and iterable; the columns are numpy arrays
    (``seq``, ``pos``, ``value``)."""

    def __init__(self, arr: np.ndarray, tokens: np.ndarray, values: np.ndarray, text) -> None:
        self.seq = arr["seq"].copy()
        self.pos = arr["pos"].copy()
        self.value = arr["value"].copy()
        self._start = arr["ctx_start"].copy()
        n = arr["ctx_len"].astype(np.int64)
        self._off = np.zeros(len(n) + 1, np.int64)
        np.cumsum(n, out=self._off[1:])
        self._tokens = tokens
        self._values = values
        self._text = text

    @classmethod
    def from_c(cls, ex: "_ffi.Examples", text) -> "ExampleList":
        """Copies a C ldb_examples (the caller frees it) into a new list."""
        n = ex.n
        if n == 0:
            z = np.zeros(0, np.uint32)
            return cls(np.zeros(0, _EX_DTYPE), z, z.view(np.float32), text)
        raw = C.string_at(C.cast(ex.ex, C.c_void_p), n * _EX_DTYPE.itemsize)
        arr = np.frombuffer(raw, _EX_DTYPE)
        m = int(arr["ctx_len"].sum())
        toks = np.empty(m, np.uint32)
        vals = np.empty(m, np.float32)
        if m:
            _ffi.lib.ldb_examples_contexts(C.byref(ex), toks.ctypes.data_as(_ffi.c_u32p),
                                           vals.ctypes.data_as(_ffi.c_floatp))
        return cls(arr, toks, vals, text)

    def __len__(self) -> int:
        return len(self.seq)

    @overload
    def __getitem__(self, i: int) -> Example: ...

    @overload
    def __getitem__(self, i: slice) -> List[Example]: ...

    def __getitem__(self, i: Union[int, slice]) -> Union[Example, List[Example]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("example index out of range")
        a, b = self._off[i], self._off[i + 1]
        ctx = Context(int(self._start[i]), self._tokens[a:b], self._values[a:b], self._text) \
            if b > a else None
        return Example(int(self.seq[i]), int(self.pos[i]), float(self.value[i]), ctx)

    def __iter__(self) -> Iterator[Example]:
        for i in range(len(self)):
            yield self[i]

    def to_json(self) -> List[Dict[str, Any]]:
        """The examples as the CLI's JSON lists them."""
        return [e.to_json() for e in self]

    def to_pandas(self):
        """A DataFrame: seq, pos, value, and context text when there is a tokenizer."""
        pd = _pandas()
        cols: Dict[str, Any] = {"seq": self.seq, "pos": self.pos, "value": self.value}
        if self._text and len(self) and self._off[-1]:
            cols["context"] = [e.context.text if e.context else None for e in self]
        return pd.DataFrame(cols)

    def __repr__(self) -> str:
        return f"<{len(self)} examples>"


class TopResult(ExampleList):
    """``DB.top``: the latent's best examples; ``dict``, ``latent`` (and ``layer``,
    ``index`` for a multi-layer dictionary), ``label``."""

    dict: str
    latent: int
    layer: Optional[int]
    index: Optional[int]
    label: Optional[str]

    def to_json(self) -> Dict[str, Any]:  # type: ignore[override]
        """The JSON of ``latentdb top --json``."""
        d: Dict[str, Any] = {"dict": self.dict}
        LatentRef(self.latent, self.layer, self.index).put(d)
        d["label"] = self.label
        d["examples"] = ExampleList.to_json(self)
        return d


class Bins:
    """Histogram bins: arrays ``lo``, ``hi``, ``count``."""

    def __init__(self, p, n: int) -> None:
        if n:
            raw = np.frombuffer(C.string_at(C.cast(p, C.c_void_p), n * C.sizeof(_ffi.Bin)),
                                np.dtype([("lo", "<f8"), ("hi", "<f8"), ("count", "<u8")]))
        else:
            raw = np.zeros(0, np.dtype([("lo", "<f8"), ("hi", "<f8"), ("count", "<u8")]))
        self.lo = raw["lo"].copy()
        self.hi = raw["hi"].copy()
        self.count = raw["count"].copy()

    def __len__(self) -> int:
        return len(self.lo)

    def to_json(self) -> List[Dict[str, Any]]:
        """The bins as the CLI's JSON lists them."""
        return [{"lo": float(a), "hi": float(b), "count": int(c)}
                for a, b, c in zip(self.lo, self.hi, self.count)]


class LatentStats:
    """``DB.latent``: count (ordinary positions where it fires), nseq, density, max,
    mean, std, label and ``hist`` (exact, linear bins from 0 to max)."""

    def __init__(self, dict_: str, ref: LatentRef, li: "_ffi.LatentInfo") -> None:
        self.dict = dict_
        self.latent, self.layer, self.index = ref.latent, ref.layer, ref.index
        self.label = None if li.label is None else _ffi.text(li.label)
        self.count = int(li.count)
        self.nseq = int(li.nseq)
        self.density = float(li.density)
        self.max = float(li.max)
        self.mean = float(li.mean)
        self.std = float(li.std)
        self.hist = Bins(li.hist, li.nbins)

    def to_json(self) -> Dict[str, Any]:
        """The JSON of ``latentdb latent --json``."""
        d: Dict[str, Any] = {"dict": self.dict}
        LatentRef(self.latent, self.layer, self.index).put(d)
        d.update(label=self.label, count=self.count, nseq=self.nseq, density=self.density,
                 max=self.max, mean=self.mean, std=self.std, hist=self.hist.to_json())
        return d

    def __repr__(self) -> str:
        return (f"LatentStats({self.dict} {self.latent}: count {self.count}, density "
                f"{self.density:.3g}, max {self.max:g})")


class DensityResult:
    """``DB.density``: per latent firing ``counts`` (numpy uint64, indexed by latent
    from ``first``) and ``density`` (counts / n_tokens), with the histogram over
    log10 density of live latents (``bins``), ``dead`` and ``n_tokens``."""

    def __init__(self, dict_: str, layer: Optional[int], d: "_ffi.Density") -> None:
        self.dict = dict_
        self.layer = layer
        self.first = int(d.first)
        self.n_tokens = int(d.n_tokens)
        self.n_latents = int(d.n_latents)
        self.dead = int(d.dead)
        self.bins = Bins(d.bins, d.nbins)
        n = self.n_latents
        self.counts = np.frombuffer(C.string_at(C.cast(d.counts, C.c_void_p), 8 * n),
                                    np.uint64).copy() if n else np.zeros(0, np.uint64)
        self.density = self.counts / self.n_tokens if self.n_tokens else \
            np.zeros(n, np.float64)

    def to_json(self, counts: bool = False) -> Dict[str, Any]:
        """The JSON of ``latentdb density`` (with ``--counts`` when counts is set)."""
        d: Dict[str, Any] = {"dict": self.dict}
        if self.layer is not None:
            d["layer"] = self.layer
            d["first"] = self.first
        d.update(n_tokens=self.n_tokens, n_latents=self.n_latents, dead=self.dead,
                 bins=self.bins.to_json())
        if counts:
            d["counts"] = self.counts.tolist()
        return d

    def to_pandas(self):
        """A DataFrame: latent, count, density."""
        pd = _pandas()
        return pd.DataFrame({"latent": np.arange(self.first, self.first + self.n_latents),
                             "count": self.counts, "density": self.density})

    def __repr__(self) -> str:
        return f"DensityResult({self.dict}: {self.n_latents} latents, {self.dead} dead)"


class Row:
    """One item of a list result, its fields as attributes (the JSON's names)."""

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)

    def to_json(self) -> Dict[str, Any]:
        """The row's fields as a dict."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __repr__(self) -> str:
        return "Row(" + ", ".join(f"{k}={v!r}" for k, v in self.to_json().items()) + ")"


class RowList(Sequence[Row]):
    """A list result: indexable, iterable, ``to_json()`` and ``to_pandas()``."""

    _key = "items"

    def __init__(self, rows: List[Row], head: Dict[str, Any]) -> None:
        self._rows = rows
        self._head = head
        for k, v in head.items():
            setattr(self, k, v)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i):  # type: ignore[override]
        return self._rows[i]

    def to_json(self) -> Dict[str, Any]:
        """The JSON of the CLI command this result answers."""
        d = dict(self._head)
        d[self._key] = [r.to_json() for r in self._rows]
        return d

    def to_pandas(self):
        """A DataFrame, a row per item."""
        pd = _pandas()
        return pd.DataFrame([r.to_json() for r in self._rows])

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {len(self)} {self._key}>"


class CoocResult(RowList):
    """``DB.cooc``: latents that fire with the query latent (``cooccurring``), each
    with dict, latent, count, count_other, jaccard, npmi; ``count`` and ``units``."""
    _key = "cooccurring"


class SearchResult(RowList):
    """``DB.search``: the latents that fire where the text occurs (``latents``), each
    with latent, score, hits, precision, density, mean_value; ``occurrences``."""
    _key = "latents"


class SampleGroup:
    """One quantile group of ``DB.samples``: values ``lo`` .. ``hi``, ``count``
    positions, and drawn ``examples``."""

    def __init__(self, lo: float, hi: float, count: int, examples: ExampleList) -> None:
        self.lo, self.hi, self.count, self.examples = lo, hi, count, examples

    def to_json(self) -> Dict[str, Any]:
        """The group as the CLI's JSON has it."""
        return {"lo": self.lo, "hi": self.hi, "count": self.count,
                "examples": self.examples.to_json()}

    def __repr__(self) -> str:
        return f"SampleGroup({self.lo:g}..{self.hi:g}, {self.count} positions)"


class SamplesResult(Sequence[SampleGroup]):
    """``DB.samples``: the groups, ascending values."""

    def __init__(self, dict_: str, ref: LatentRef, by: str, groups: List[SampleGroup]):
        self.dict = dict_
        self.latent, self.layer, self.index = ref.latent, ref.layer, ref.index
        self.by = by
        self.groups = groups

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i):  # type: ignore[override]
        return self.groups[i]

    def to_json(self) -> Dict[str, Any]:
        """The JSON of ``latentdb samples --json``."""
        d: Dict[str, Any] = {"dict": self.dict}
        LatentRef(self.latent, self.layer, self.index).put(d)
        d["by"] = self.by
        d["groups"] = [g.to_json() for g in self.groups]
        return d


class SeqResult(_Texted):
    """``DB.seq``: a sequence's ``tokens`` (with ``text`` and ``pieces`` when there is
    a tokenizer) and per position the top latents (``positions``: a list of lists of
    Row(dict, latent, value))."""

    def __init__(self, seq: int, source: str, tokens: np.ndarray, positions: List[List[Row]],
                 text) -> None:
        self.seq = seq
        self.source = source
        self.tokens = tokens
        self.positions = positions
        self._text = text

    def to_json(self) -> Dict[str, Any]:
        """The JSON of ``latentdb seq --json``."""
        d: Dict[str, Any] = {"seq": self.seq, "source": self.source,
                             "tokens": self.tokens.tolist()}
        if self._text:
            d["text"] = self.text
            d["pieces"] = self.pieces
        d["positions"] = [{"pos": p, "latents": [r.to_json() for r in rows]}
                          for p, rows in enumerate(self.positions)]
        return d

    def __repr__(self) -> str:
        return f"SeqResult(seq={self.seq}, {len(self.tokens)} tokens)"
