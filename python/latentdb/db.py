"""A latentdb database: ``latentdb.open(path)``.

Each reading call runs in one read transaction of its own, so several threads may
query one DB at once; the GIL is released while the library works.
"""
from __future__ import annotations

import ctypes as C
import json
import os
import threading
import weakref
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _ffi
from .results import (CoocResult, DensityResult, ExampleList, LatentRef, LatentStats, Row,
                      SampleGroup, SamplesResult, SearchResult, SeqResult, TopResult)

Latent = Union[int, str]

try:  # optional
    import scipy.sparse as _sparse  # type: ignore
except Exception:  # pragma: no cover - scipy is optional
    _sparse = None


class ClosedError(_ffi.Error, ValueError):
    """A call on a database (or dictionary, or writer) that was closed."""


class Activations:
    """Every code of one latent: numpy arrays ``seq`` (uint64), ``pos`` (uint32) and
    ``value`` (float32), in corpus order. Unpacks as ``seq, pos, value``."""

    def __init__(self, seq: np.ndarray, pos: np.ndarray, value: np.ndarray) -> None:
        self.seq, self.pos, self.value = seq, pos, value

    def __iter__(self):
        return iter((self.seq, self.pos, self.value))

    def __len__(self) -> int:
        return len(self.seq)

    def __repr__(self) -> str:
        return f"Activations({len(self)} codes)"


class CSRArrays:
    """A CSR matrix as its three arrays (``indptr`` int64, ``indices`` int32,
    ``data`` float32) and ``shape``, for when scipy is not installed; ``seq_row[i]``
    is the row of the i-th sequence's first position."""

    def __init__(self, indptr, indices, data, shape, seq_row) -> None:
        self.indptr, self.indices, self.data, self.shape = indptr, indices, data, shape
        self.seq_row = seq_row

    def toarray(self) -> np.ndarray:
        """The dense matrix (float32)."""
        out = np.zeros(self.shape, np.float32)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        out[rows, self.indices] = self.data
        return out

    def __repr__(self) -> str:
        return f"CSRArrays(shape={self.shape}, nnz={len(self.data)})"


def _copy(ptr, n: int, dtype) -> np.ndarray:
    """n elements of dtype at a C pointer, copied once into a numpy array."""
    dt = np.dtype(dtype)
    out = np.empty(n, dt)
    if n:
        C.memmove(out.ctypes.data, ptr, n * dt.itemsize)
    return out


class _Owner:
    """Owns a C result whose arrays numpy views share: frees it when the last view
    goes (large results are handed over without a copy)."""

    def __init__(self, ptr, free) -> None:
        self.ptr, self.free = ptr, free

    def __del__(self) -> None:
        self.free(self.ptr)


_CT = {np.dtype(np.uint64): C.c_uint64, np.dtype(np.uint32): C.c_uint32,
       np.dtype(np.float32): C.c_float, np.dtype(np.int64): C.c_int64,
       np.dtype(np.int32): C.c_int32}


def _view(ptr, n: int, dtype, owner: _Owner) -> np.ndarray:
    """n elements of dtype at ptr, a C result's array, as numpy without a copy: the
    array keeps owner (and so the C result) alive."""
    dt = np.dtype(dtype)
    if n == 0:
        return np.zeros(0, dt)
    buf = (_CT[dt] * n).from_address(C.cast(ptr, C.c_void_p).value)
    buf._owner = owner
    return np.ctypeslib.as_array(buf)


class _Text:
    """The database's tokenizer, for the text of contexts: decode, and pieces with a
    cache (a vocabulary's pieces are read once)."""

    def __init__(self, db: "DB", tk: int) -> None:
        self._db = db
        self._tk = tk
        self._cache: Dict[int, str] = {}
        self._buf = C.create_string_buffer(512)

    def decode(self, ids: np.ndarray) -> str:
        a = np.ascontiguousarray(ids, np.uint32)
        out = C.c_void_p()
        n = C.c_size_t()
        with self._db._use():
            rc = _ffi.lib.ldb_tokenizer_decode(self._tk, a.ctypes.data_as(_ffi.c_u32p), len(a),
                                               C.byref(out), C.byref(n))
        if rc:
            raise _ffi.error(rc, "out of memory decoding tokens")
        try:
            return C.string_at(out, n.value).decode("utf-8", "replace")
        finally:
            _ffi.lib.ldb_free(out)

    def piece(self, i: int) -> str:
        s = self._cache.get(i)
        if s is None:
            with self._db._use():
                n = _ffi.lib.ldb_tokenizer_piece_text(self._tk, i, self._buf, 512)
                if n >= 512:
                    b = C.create_string_buffer(n + 1)
                    _ffi.lib.ldb_tokenizer_piece_text(self._tk, i, b, n + 1)
                    raw = b.raw[:n]
                else:
                    raw = self._buf.raw[:n]
            s = raw.decode("utf-8", "replace")
            self._cache[i] = s
        return s

    def pieces(self, ids: np.ndarray) -> List[str]:
        return [self.piece(int(i)) for i in ids]


_SCOPES = {"token": 0, "seq": 2}
_SORTS = {"jaccard": 0, "count": 1, "npmi": 2}


class DB(_ffi.Closing):
    """An open latentdb database (``latentdb.open``). Use it as a context manager, or
    call ``close()``; every call after closing raises ``ClosedError``."""

    def __init__(self, path: Union[str, os.PathLike], write: bool = False) -> None:
        self.path = os.fspath(path)
        self.writable = write
        self._h = C.c_void_p()
        self._lock = threading.Condition()
        self._busy = 0
        self._closed = False
        self._text: Optional[_Text] = None
        self._text_done = False
        self._layers: Dict[str, int] = {}
        self._writers: "weakref.WeakSet" = weakref.WeakSet()
        rc = _ffi.lib.ldb_db_open(self.path.encode(), _ffi.OPEN_WRITE if write else _ffi.OPEN_READ,
                                  C.byref(self._h))
        if rc:
            msg = _ffi.text(_ffi.lib.ldb_db_errmsg(self._h)) if self._h else ""
            _ffi.lib.ldb_db_close(self._h)
            self._h = C.c_void_p()
            self._closed = True
            raise _ffi.error(rc, msg)

    # -- lifetime --------------------------------------------------------------
    def _use(self):
        return _Use(self)

    def close(self) -> None:
        """Closes the database once every call running on it has returned (its open
        writers first, left unfinished)."""
        for w in list(getattr(self, "_writers", ())):
            try:
                w.close()
            except _ffi.Error:
                pass
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while self._busy:
                self._lock.wait()
            h, self._h = self._h, C.c_void_p()
        _ffi.lib.ldb_db_close(h)

    def __repr__(self) -> str:
        return f"<latentdb.DB {self.path!r}{' closed' if self._closed else ''}>"

    def _fail(self, rc: int) -> _ffi.Error:
        return _ffi.error(rc, _ffi.text(_ffi.lib.ldb_db_errmsg(self._h)))

    # -- names -----------------------------------------------------------------
    @staticmethod
    def _name(dict_: str) -> bytes:
        if not isinstance(dict_, str):
            raise TypeError(f"a dictionary is named by a str, not {type(dict_).__name__}")
        return dict_.encode()

    def _latent(self, dict_: str, latent: Latent) -> int:
        """A latent's global id: an int, or "N" / "LAYER:INDEX"."""
        if isinstance(latent, (bool, np.bool_)):
            raise TypeError("a latent is an int or 'LAYER:INDEX', not a bool")
        if isinstance(latent, (int, np.integer)):
            if latent < 0 or latent > 0xFFFFFFFF:
                raise _ffi.InvalidArgumentError(f"latent {latent} is out of range", _ffi.EINVAL)
            latent = str(int(latent))
        if not isinstance(latent, str):
            raise TypeError(f"a latent is an int or 'LAYER:INDEX', not {type(latent).__name__}")
        out = C.c_uint32()
        rc = _ffi.lib.ldb_db_latent_parse(self._h, self._name(dict_), latent.encode(),
                                          C.byref(out))
        if rc:
            raise self._fail(rc)
        return out.value

    def _ref(self, dict_: str, latent: int) -> LatentRef:
        n = self._layers.get(dict_)
        if n is None:
            n = self._layers[dict_] = _ffi.lib.ldb_db_dict_layers(self._h, self._name(dict_))
        if n > 1:
            layer, index = C.c_uint32(), C.c_uint32()
            if _ffi.lib.ldb_db_latent_layer(self._h, dict_.encode(), latent, C.byref(layer),
                                            C.byref(index)) == 0:
                return LatentRef(latent, layer.value, index.value)
        return LatentRef(latent)

    def _tokenizer(self) -> Optional[_Text]:
        if not self._text_done:
            tk = C.c_void_p()
            rc = _ffi.lib.ldb_db_tokenizer(self._h, C.byref(tk))
            if rc:
                raise self._fail(rc)
            self._text = _Text(self, tk.value) if tk.value else None
            self._text_done = True
        return self._text

    @staticmethod
    def _u32(name: str, v: Any, lo: int = 0, hi: int = 0xFFFFFFFF) -> int:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an int, not {type(v).__name__}")
        if not lo <= v <= hi:
            raise ValueError(f"{name} takes {lo}..{hi}, not {v}")
        return int(v)

    # -- the database ------------------------------------------------------------
    def info(self) -> Dict[str, Any]:
        """Sequences, tokens, value type, skip set and each dictionary's size (the
        JSON of ``latentdb info``)."""
        with self._use():
            p = C.POINTER(_ffi.Info)()
            rc = _ffi.lib.ldb_query_info(self._h, C.byref(p))
            if rc:
                raise self._fail(rc)
            try:
                i = p.contents
                dicts = []
                for k in range(i.n_dicts):
                    u = i.dicts[k]
                    dicts.append({"name": _ffi.text(u.name), "d_sae": u.d_sae, "nnz": u.nnz,
                                  "positions": u.positions, "index_bytes": u.bytes,
                                  "bytes_per_nnz": u.bytes / u.nnz if u.nnz else 0})
                return {"n_seq": i.n_seq, "n_tokens": i.n_tokens, "n_ordinary": i.n_ordinary,
                        "values": _ffi.VALUE_NAMES[i.values],
                        "skip_tokens": [i.skip[k] for k in range(i.n_skip)],
                        "dicts": dicts, "bytes": i.bytes}
            finally:
                _ffi.lib.ldb_info_free(p)

    def dicts(self) -> List[Dict[str, Any]]:
        """The registered dictionaries' records (the JSON of ``latentdb dict ls``)."""
        with self._use():
            return [json.loads(_ffi.lib.ldb_db_dict_json(self._h, i))
                    for i in range(_ffi.lib.ldb_db_dict_count(self._h))]

    def check(self) -> Dict[str, Any]:
        """Verifies everything (``latentdb check``): counts, problems and the digest
        of the logical content."""
        with self._use():
            rep = _ffi.CheckReport()
            rc = _ffi.lib.ldb_db_check(self._h, C.byref(rep))
            if rc:
                raise self._fail(rc)
            return {"n_seq": rep.n_seq, "n_tokens": rep.n_tokens, "nnz": rep.nnz,
                    "n_problems": rep.n_problems, "problems": _ffi.text(rep.problems),
                    "notes": _ffi.text(rep.notes), "digest": _ffi.text(rep.digest)}

    # -- per latent ------------------------------------------------------------------
    def top(self, dict: str, latent: Latent, k: int = 20, context: int = 8,
            distinct_seq: bool = False, include_special: bool = False,
            positions_only: bool = False) -> TopResult:
        """The latent's top examples by stored value (ties by seq, pos), each with
        ``context`` tokens either side: ``latentdb top``."""
        o = _ffi.TopOpts()
        _ffi.lib.ldb_top_opts_init(C.byref(o))
        o.k = self._u32("k", k, 1, 100000)
        o.context = self._u32("context", context, 0, 10000)
        o.distinct_seq = bool(distinct_seq)
        o.include_special = bool(include_special)
        o.positions_only = bool(positions_only)
        with self._use():
            lat = self._latent(dict, latent)
            p = C.POINTER(_ffi.Examples)()
            rc = _ffi.lib.ldb_query_top(self._h, dict.encode(), lat, C.byref(o), C.byref(p))
            if rc:
                raise self._fail(rc)
            try:
                r = TopResult.from_c(p.contents, self._tokenizer())
            finally:
                _ffi.lib.ldb_examples_free(p)
            ref = self._ref(dict, lat)
            li = C.POINTER(_ffi.LatentInfo)()
            rc = _ffi.lib.ldb_query_latent(self._h, dict.encode(), lat, 1, C.byref(li))
            if rc:
                raise self._fail(rc)
            label = li.contents.label
            _ffi.lib.ldb_latent_info_free(li)
        r.dict, r.latent, r.layer, r.index = dict, lat, ref.layer, ref.index
        r.label = None if label is None else _ffi.text(label)
        return r

    def samples(self, dict: str, latent: Latent, groups: int = 10, per_group: int = 5,
                by: str = "count", seed: int = 0, context: int = 8) -> SamplesResult:
        """Quantile samples: the latent's firing positions cut into groups by equal
        counts (``by="count"``) or equal value ranges (``by="value"``), examples drawn
        uniformly (seeded) within each: ``latentdb samples``."""
        if by not in ("count", "value"):
            raise ValueError(f"by takes 'count' or 'value', not {by!r}")
        g = self._u32("groups", groups, 1, 1000)
        per = self._u32("per_group", per_group, 0, 10000)
        sd = self._u32("seed", seed)
        ctx = self._u32("context", context, 0, 10000)
        with self._use():
            lat = self._latent(dict, latent)
            p = C.POINTER(_ffi.Samples)()
            rc = _ffi.lib.ldb_query_samples(self._h, dict.encode(), lat, g, per,
                                            0 if by == "count" else 1, sd, ctx, C.byref(p))
            if rc:
                raise self._fail(rc)
            try:
                text = self._tokenizer()
                out = [SampleGroup(float(x.lo), float(x.hi), int(x.count),
                                   ExampleList.from_c(x.ex, text))
                       for x in (p.contents.groups[i] for i in range(p.contents.n))]
            finally:
                _ffi.lib.ldb_samples_free(p)
            return SamplesResult(dict, self._ref(dict, lat), by, out)

    def latent(self, dict: str, latent: Latent, bins: int = 20) -> LatentStats:
        """The latent's statistics and exact histogram: ``latentdb latent``."""
        nb = self._u32("bins", bins, 1, 100000)
        with self._use():
            lat = self._latent(dict, latent)
            p = C.POINTER(_ffi.LatentInfo)()
            rc = _ffi.lib.ldb_query_latent(self._h, dict.encode(), lat, nb, C.byref(p))
            if rc:
                raise self._fail(rc)
            try:
                return LatentStats(dict, self._ref(dict, lat), p.contents)
            finally:
                _ffi.lib.ldb_latent_info_free(p)

    def density(self, dict: str, bins: int = 50, layer: Optional[int] = None) -> DensityResult:
        """Every latent's firing count and density over ordinary positions, and the
        histogram of log10 density: ``latentdb density`` (``layer``: one layer of a
        multi-layer dictionary)."""
        nb = self._u32("bins", bins, 1, 100000)
        ly = _ffi.ALL_LAYERS if layer is None else self._u32("layer", layer, 0, 0xFFFFFFFE)
        with self._use():
            p = C.POINTER(_ffi.Density)()
            rc = _ffi.lib.ldb_query_density_layer(self._h, self._name(dict), ly, nb, C.byref(p))
            if rc:
                raise self._fail(rc)
            try:
                return DensityResult(dict, layer, p.contents)
            finally:
                _ffi.lib.ldb_density_free(p)

    def cooc(self, dict: str, latent: Latent, with_: Optional[str] = None,
             scope: str = "token", k: int = 20, sort: str = "jaccard",
             with_layer: Optional[int] = None) -> CoocResult:
        """Exact co-occurrence of the latent with every latent of ``dict`` (or
        ``with_``; ``with_layer``: one layer of it), in units of ``scope`` —
        "token", "window:N" or "seq": ``latentdb cooc``."""
        window = 0
        if not isinstance(scope, str):
            raise TypeError("scope is 'token', 'window:N' or 'seq'")
        if scope.startswith("window:"):
            try:
                window = int(scope[7:])
            except ValueError:
                window = -1
            if not 0 <= window <= 100000 or not scope[7:].isdigit():
                raise ValueError(f"scope takes token, window:N or seq, not {scope!r}")
            sc = 1
        elif scope in _SCOPES:
            sc = _SCOPES[scope]
        else:
            raise ValueError(f"scope takes token, window:N or seq, not {scope!r}")
        if sort not in _SORTS:
            raise ValueError(f"sort takes jaccard, count or npmi, not {sort!r}")
        kk = self._u32("k", k, 1)
        wl = _ffi.ALL_LAYERS if with_layer is None else self._u32("with_layer", with_layer, 0,
                                                                   0xFFFFFFFE)
        other = dict if with_ is None else with_
        with self._use():
            lat = self._latent(dict, latent)
            p = C.POINTER(_ffi.Cooc)()
            rc = _ffi.lib.ldb_query_cooc_layer(self._h, dict.encode(), lat,
                                               None if with_ is None else self._name(with_), wl,
                                               kk, sc, window, _SORTS[sort], C.byref(p))
            if rc:
                raise self._fail(rc)
            try:
                c = p.contents
                rows = []
                for i in range(c.n):
                    it = c.items[i]
                    d: Dict[str, Any] = {"dict": other}
                    self._ref(other, it.latent).put(d)
                    d.update(count=it.count, count_other=it.count_other, jaccard=it.jaccard,
                             npmi=it.npmi)
                    rows.append(Row(**d))
                head: Dict[str, Any] = {"dict": dict}
                self._ref(dict, lat).put(head)
                head.update(count=c.count, units=c.units, scope=scope)
                return CoocResult(rows, head)
            finally:
                _ffi.lib.ldb_cooc_free(p)

    def search(self, dict: str, text: str, k: int = 20, where: str = "last") -> SearchResult:
        """The latents that fire where ``text`` occurs in the corpus, ranked by how
        specifically they do: ``latentdb search``."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        if where not in ("last", "all"):
            raise ValueError(f"where takes 'last' or 'all', not {where!r}")
        kk = self._u32("k", k, 1)
        with self._use():
            tk = self._tokenizer()
            if tk is None:
                raise _ffi.InvalidArgumentError("the database has no tokenizer: make it with init "
                                                "--tokenizer", _ffi.EINVAL)
            raw = text.encode("utf-8", "surrogatepass")
            ids = _ffi.c_u32p()
            n = C.c_size_t()
            rc = _ffi.lib.ldb_tokenizer_encode(tk._tk, raw, len(raw), C.byref(ids), C.byref(n))
            if rc:
                raise _ffi.error(rc, _ffi.text(_ffi.lib.ldb_tokenizer_errmsg(tk._tk)))
            try:
                toks = _copy(ids, n.value, np.uint32)
            finally:
                _ffi.lib.ldb_free(ids)
            if not len(toks):
                raise _ffi.InvalidArgumentError(f"search: {text!r} has no tokens", _ffi.EINVAL)
            p = C.POINTER(_ffi.Search)()
            rc = _ffi.lib.ldb_query_search(self._h, self._name(dict),
                                           toks.ctypes.data_as(_ffi.c_u32p), len(toks),
                                           where == "all", kk, C.byref(p))
            if rc:
                raise self._fail(rc)
            try:
                s = p.contents
                rows = []
                for i in range(s.n):
                    it = s.items[i]
                    d: Dict[str, Any] = {}
                    self._ref(dict, it.latent).put(d)
                    d.update(score=it.score, hits=it.hits, precision=it.precision,
                             density=it.density, mean_value=it.mean_value)
                    rows.append(Row(**d))
                head = {"dict": dict, "text": text, "tokens": toks.tolist(),
                        "pieces": tk.pieces(toks), "where": where, "occurrences": s.occurrences}
                return SearchResult(rows, head)
            finally:
                _ffi.lib.ldb_search_free(p)

    def seq(self, seq: int, dict: Optional[str] = None, k: int = 5) -> SeqResult:
        """One sequence: its tokens and, per position, the top ``k`` latents of each
        dictionary (or of ``dict``): ``latentdb seq``."""
        s_ = self._u32("seq", seq, 0, 2**64 - 1)
        kk = self._u32("k", k)
        with self._use():
            p = C.POINTER(_ffi.SeqView)()
            rc = _ffi.lib.ldb_query_seq(self._h, s_, None if dict is None else self._name(dict),
                                        kk, C.byref(p))
            if rc:
                raise self._fail(rc)
            try:
                v = p.contents
                names = [_ffi.text(v.dict_names[i]) for i in range(v.n_dicts)]
                toks = _copy(v.tokens, v.len, np.uint32)
                start = _copy(v.start, v.len + 1, np.uint64)
                nl = int(start[-1]) if v.len else 0
                lat = np.frombuffer(C.string_at(C.cast(v.lat, C.c_void_p),
                                                nl * C.sizeof(_ffi.SeqLatent)),
                                    np.dtype({"names": ["dict", "latent", "value"],
                                              "formats": [np.uint16, np.uint32, np.float32],
                                              "offsets": [_ffi.SeqLatent.dict.offset,
                                                          _ffi.SeqLatent.latent.offset,
                                                          _ffi.SeqLatent.value.offset],
                                              "itemsize": C.sizeof(_ffi.SeqLatent)})) \
                    if nl else None
                positions = []
                for q in range(v.len):
                    rows = []
                    for e in range(int(start[q]), int(start[q + 1])):
                        name = names[int(lat["dict"][e])]
                        d: Dict[str, Any] = {"dict": name}
                        self._ref(name, int(lat["latent"][e])).put(d)
                        d["value"] = float(lat["value"][e])
                        rows.append(Row(**d))
                    positions.append(rows)
                return SeqResult(int(v.seq), _ffi.text(v.source), toks, positions,
                                 self._tokenizer())
            finally:
                _ffi.lib.ldb_seqview_free(p)

    def labels(self, dict: str) -> Dict[int, str]:
        """The dictionary's labels: {latent: text}."""
        with self._use():
            p = C.POINTER(_ffi.Labels)()
            rc = _ffi.lib.ldb_query_labels(self._h, self._name(dict), C.byref(p))
            if rc:
                raise self._fail(rc)
            try:
                return {p.contents.latent[i]: _ffi.text(p.contents.text[i])
                        for i in range(p.contents.n)}
            finally:
                _ffi.lib.ldb_labels_free(p)

    def label(self, dict: str, latent: Latent, text: str) -> None:
        """Labels a latent ("" removes its label); the DB must be open for writing."""
        if not isinstance(text, str):
            raise TypeError(f"a label is a str, not {type(text).__name__}")
        if not self.writable:
            raise _ffi.InvalidArgumentError(f"{self.path}: opened read-only; open it with "
                                            "write=True to label", _ffi.EINVAL)
        with self._use():
            lat = self._latent(dict, latent)
            rc = _ffi.lib.ldb_db_label(self._h, dict.encode(), lat,
                                       text.encode("utf-8", "surrogatepass"))
            if rc:
                raise self._fail(rc)

    # -- arrays ----------------------------------------------------------------------
    def activations(self, dict: str, latent: Latent,
                    include_special: bool = False) -> Activations:
        """Every code of the latent as arrays (seq, pos, value), in corpus order; at
        ordinary positions only (those density counts) unless ``include_special``."""
        with self._use():
            lat = self._latent(dict, latent)
            p = C.POINTER(_ffi.Activations)()
            rc = _ffi.lib.ldb_query_activations(self._h, dict.encode(), lat,
                                                bool(include_special), C.byref(p))
            if rc:
                raise self._fail(rc)
            own = _Owner(p, _ffi.lib.ldb_activations_free)
            a = p.contents
            return Activations(_view(a.seq, a.n, np.uint64, own), _view(a.pos, a.n, np.uint32, own),
                               _view(a.value, a.n, np.float32, own))

    @staticmethod
    def _seqs(seqs: Union[int, range, slice, Tuple[int, int]]) -> Tuple[int, int]:
        if isinstance(seqs, (int, np.integer)) and not isinstance(seqs, bool):
            if seqs < 0:
                raise ValueError(f"sequence ids are >= 0, not {seqs}")
            return int(seqs), int(seqs) + 1
        if isinstance(seqs, range) and seqs.step == 1 and 0 <= seqs.start <= seqs.stop:
            return seqs.start, seqs.stop
        if isinstance(seqs, tuple) and len(seqs) == 2 and all(isinstance(x, int) for x in seqs) \
                and 0 <= seqs[0] <= seqs[1]:
            return seqs
        raise TypeError("seqs is a sequence id, a range(a, b) with step 1, or a pair (a, b)")

    def codes(self, dict: str, seqs: Union[int, range, Tuple[int, int]]):
        """The codes of sequences ``seqs`` (an id, or range(a, b)) as a CSR matrix
        [positions, d_sae], one row per position in order: a
        ``scipy.sparse.csr_matrix`` when scipy imports, else ``CSRArrays``. Either
        carries ``seq_row``, the row of each sequence's first position."""
        a, b = self._seqs(seqs)
        with self._use():
            p = C.POINTER(_ffi.Csr)()
            rc = _ffi.lib.ldb_query_codes(self._h, self._name(dict), a, b, C.byref(p))
            if rc:
                raise self._fail(rc)
            own = _Owner(p, _ffi.lib.ldb_csr_free)
            c = p.contents
            nnz = int(c.indptr[c.n_rows]) if c.n_rows else 0
            # ids < 2^31 and offsets < 2^63: the signed types scipy wants, as views
            indptr = _view(c.indptr, c.n_rows + 1, np.int64, own)
            indices = _view(c.indices, nnz, np.int32, own)
            data = _view(c.data, nnz, np.float32, own)
            seq_row = _view(c.seq_row, c.n_seq + 1, np.int64, own)
            shape = (int(c.n_rows), int(c.n_cols))
        if _sparse is not None:
            m = _sparse.csr_matrix((data, indices, indptr), shape=shape, copy=False)
            m.seq_row = seq_row
            return m
        return CSRArrays(indptr, indices, data, shape, seq_row)

    def tokens(self, seqs: Union[int, range, Tuple[int, int]]):
        """Token ids (int32) of a sequence (1-D), or of range(a, b): 2-D [n, len] when
        they all have one length, else a list of 1-D arrays."""
        a, b = self._seqs(seqs)
        with self._use():
            p = C.POINTER(_ffi.Tokens)()
            rc = _ffi.lib.ldb_query_tokens(self._h, a, b, C.byref(p))
            if rc:
                raise self._fail(rc)
            try:
                t = p.contents
                toks = _copy(t.tokens, t.n, np.uint32).astype(np.int32)
                off = _copy(t.seq_off, t.n_seq + 1, np.uint64).astype(np.int64)
            finally:
                _ffi.lib.ldb_tokens_free(p)
        if isinstance(seqs, (int, np.integer)):
            return toks
        lens = np.diff(off)
        if len(lens) and (lens == lens[0]).all():
            return toks.reshape(len(lens), int(lens[0]))
        if not len(lens):
            return toks.reshape(0, 0)
        return [toks[off[i]:off[i + 1]] for i in range(len(lens))]

    # -- writing -------------------------------------------------------------------
    def writer(self, dict: Union[str, Sequence[str]], source: str, ctx: Optional[int] = None,
               precision: str = "exact"):
        """A streaming ingest (see ``Writer``): rows handed over batch by batch are
        encoded through ``dict`` (a name, or several) and stored as one run named by
        ``source``; the DB must be open for writing (``open(path, write=True)``)."""
        from .writer import Writer
        w = Writer(self, dict, source, ctx, precision)
        self._writers.add(w)
        return w


class _Use:
    """Counts a call in flight on a DB, so that close() waits for it."""
    __slots__ = ("db",)

    def __init__(self, db: DB) -> None:
        self.db = db

    def __enter__(self) -> None:
        db = self.db
        with db._lock:
            if db._closed:
                raise ClosedError(f"{db.path}: the database is closed", _ffi.EINVAL)
            db._busy += 1

    def __exit__(self, *exc: Any) -> None:
        db = self.db
        with db._lock:
            db._busy -= 1
            if not db._busy:
                db._lock.notify_all()


def open(path: Union[str, os.PathLike], write: bool = False) -> DB:  # noqa: A001
    """Opens the database at ``path``, read-only unless ``write`` is set."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    return DB(path, write)
