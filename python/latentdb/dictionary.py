"""A dictionary (SAE, transcoder, CLT, crosscoder) and its encoder:
``latentdb.Dictionary.open(path)``."""
from __future__ import annotations

import ctypes as C
import os
import threading
from typing import Any, Dict, List, Sequence, Tuple, Union

import numpy as np

from . import _ffi

_PRECISIONS = {"exact": _ffi.PRECISION_EXACT, "f32": _ffi.PRECISION_F32,
               "bf16": _ffi.PRECISION_BF16}


def act_dtype(a: np.ndarray) -> int:
    """The library's element type of an activations array: float32, float16, or
    uint16 holding bfloat16 bits."""
    if a.dtype == np.float32:
        return _ffi.F32
    if a.dtype == np.float16:
        return _ffi.F16
    if a.dtype == np.uint16:
        return _ffi.BF16
    raise TypeError(f"activations of dtype {a.dtype}: expected float32, float16, or uint16 "
                    "holding bfloat16")


def as_acts(x: Any, what: str = "activations") -> np.ndarray:
    """x as a C-contiguous numpy array of a dtype the encoder reads (no copy when it is
    one already; torch CPU tensors and other buffers go through np.asarray)."""
    a = np.asarray(x)
    act_dtype(a)
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    return a


class Dictionary(_ffi.Closing):
    """An open dictionary. ``info`` is what ``latentdb dict show`` prints as JSON;
    ``encode(x)`` gives the codes ``ingest`` stores for x."""

    def __init__(self, path: Union[str, os.PathLike], precision: str = "exact") -> None:
        if precision not in _PRECISIONS:
            raise ValueError(f"precision takes exact, f32 or bf16, not {precision!r}")
        self.path = os.fspath(path)
        self._h = C.c_void_p()
        self._enc = C.c_void_p()
        self._lock = threading.Lock()
        rc = _ffi.lib.ldb_dict_open(self.path.encode(), C.byref(self._h))
        if rc:
            msg = _ffi.text(_ffi.lib.ldb_dict_errmsg(self._h)) if self._h else ""
            _ffi.lib.ldb_dict_close(self._h)
            self._h = C.c_void_p()
            raise _ffi.error(rc, msg)
        i = _ffi.lib.ldb_dict_get_info(self._h).contents
        self.info: Dict[str, Any] = {
            "format": _ffi.text(i.format), "architecture": _ffi.text(i.architecture),
            "type": _ffi.text(i.type), "kind": _ffi.text(i.kind), "dtype": _ffi.text(i.dtype),
            "d_in": i.d_in, "d_out": i.d_out, "d_sae": i.d_sae, "k": i.k,
            "l0": None if i.l0 < 0 else i.l0, "hook_in": _ffi.text(i.hook_in),
            "hook_out": _ffi.text(i.hook_out), "model": _ffi.text(i.model),
            "normalize": _ffi.text(i.normalize), "subtract_b_dec": bool(i.sub_b_dec),
            "skip": bool(i.has_skip), "n_layers": i.n_layers,
            "weights": _ffi.text(i.weights_path), "config": _ffi.text(i.config_path)}
        self.layers: List[Dict[str, Any]] = []
        for li in range(i.n_layers):
            L = _ffi.lib.ldb_dict_get_layer(self._h, li).contents
            self.layers.append({"layer": L.layer, "d_in": L.d_in, "d_sae": L.d_sae,
                                "d_out": L.d_out, "offset": L.offset,
                                "hook_in": _ffi.text(L.hook_in), "hook_out": _ffi.text(L.hook_out)})
        o = _ffi.EncoderOpts()
        _ffi.lib.ldb_encoder_opts_init(C.byref(o))
        o.precision = _PRECISIONS[precision]
        rc = _ffi.lib.ldb_encoder_new(self._h, C.byref(o), C.byref(self._enc))
        if rc:
            msg = _ffi.text(_ffi.lib.ldb_encoder_errmsg(self._enc)) if self._enc else ""
            self.close()
            raise _ffi.error(rc, msg)

    @classmethod
    def open(cls, path: Union[str, os.PathLike], precision: str = "exact") -> "Dictionary":
        """Opens the dictionary at path (a folder or a weights file; the format is
        detected) with an encoder of the given precision ("exact", the default, or
        "f32": the same exact codes; "bf16": approximate)."""
        return cls(path, precision)

    @property
    def d_in(self) -> int:
        """The width of the activations it reads."""
        return int(self.info["d_in"])

    @property
    def d_sae(self) -> int:
        """Its number of latents (all layers' for a multi-layer dictionary)."""
        return int(self.info["d_sae"])

    @property
    def gemm(self) -> str:
        """The encoder's GEMM, as ingest reports it."""
        self._check()
        return _ffi.text(_ffi.lib.ldb_encoder_gemm_name(self._enc))

    def _check(self) -> None:
        if not self._h:
            from .db import ClosedError
            raise ClosedError(f"{self.path}: the dictionary is closed", _ffi.EINVAL)

    def encode(self, x: Union[np.ndarray, Sequence[np.ndarray]]) -> Tuple[np.ndarray, np.ndarray,
                                                                           np.ndarray]:
        """Encodes activations: ``x`` [n, d_in] (float32, float16, or uint16 holding
        bfloat16), or for a multi-layer dictionary [n, n_layers, d_in] or a list of
        one [n, d_in] array per layer. Returns CSR arrays ``(indptr, indices, data)``
        of the codes [n, d_sae] (int64, int32, float32): exactly the codes ``ingest``
        stores (before the database's value rounding)."""
        self._check()
        nl = int(self.info["n_layers"])
        if isinstance(x, (list, tuple)):
            arrs = [as_acts(a) for a in x]
            if len(arrs) != nl:
                raise ValueError(f"{len(arrs)} arrays for a dictionary of {nl} layers")
            shape0 = arrs[0].shape
            for a in arrs:
                if a.ndim != 2 or a.shape != shape0 or a.dtype != arrs[0].dtype:
                    raise ValueError("each layer's activations must be [n, d_in] of one shape "
                                     "and dtype")
            n = shape0[0]
        else:
            a = as_acts(x)
            want = 3 if nl > 1 else 2
            if a.ndim != want or (nl > 1 and a.shape[1] != nl):
                raise ValueError(f"activations of shape {a.shape}: expected "
                                 f"{'[n, %d, d_in]' % nl if nl > 1 else '[n, d_in]'}")
            arrs = [a]
            n = a.shape[0]
        if arrs[0].shape[-1] != self.d_in:
            raise ValueError(f"activations have d_in {arrs[0].shape[-1]}, the dictionary reads "
                             f"{self.d_in}")
        dt = act_dtype(arrs[0])
        starts: List[np.ndarray] = []
        lats: List[np.ndarray] = []
        vals: List[np.ndarray] = []

        def tile(_ctx, t):
            c = t.contents
            b = c.start[0]
            e = c.start[c.n_rows]
            st = np.frombuffer(C.string_at(C.cast(c.start, C.c_void_p), 8 * (c.n_rows + 1)),
                               np.uint64)
            starts.append(st[1:] - b)
            if e > b:
                lats.append(np.frombuffer(C.string_at(C.addressof(c.latent.contents) + 4 * b,
                                                      4 * (e - b)), np.uint32))
                vals.append(np.frombuffer(C.string_at(C.addressof(c.value.contents) + 4 * b,
                                                      4 * (e - b)), np.float32))
            return 0

        fn = _ffi.CODES_FN(tile)
        with self._lock:
            self._check()
            if len(arrs) == 1:
                rc = _ffi.lib.ldb_encoder_encode(self._enc, arrs[0].ctypes.data, dt, n, fn, None)
            else:
                ptrs = (C.c_void_p * len(arrs))(*[a.ctypes.data for a in arrs])
                rc = _ffi.lib.ldb_encoder_encode_layers(self._enc, ptrs, 0, dt, n, fn, None)
        if rc:
            raise _ffi.error(rc, _ffi.text(_ffi.lib.ldb_encoder_errmsg(self._enc)))
        indptr = np.zeros(n + 1, np.int64)
        off = 0
        r = 0
        for st in starts:
            indptr[r + 1:r + 1 + len(st)] = st.astype(np.int64) + off
            r += len(st)
            off = int(indptr[r])
        indices = np.concatenate(lats).astype(np.int32) if lats else np.zeros(0, np.int32)
        data = np.concatenate(vals) if vals else np.zeros(0, np.float32)
        return indptr, indices, data

    def close(self) -> None:
        """Frees the encoder and the dictionary."""
        with self._lock:
            if self._enc:
                _ffi.lib.ldb_encoder_free(self._enc)
                self._enc = C.c_void_p()
            if self._h:
                _ffi.lib.ldb_dict_close(self._h)
                self._h = C.c_void_p()

    def __repr__(self) -> str:
        i = self.info
        return (f"<latentdb.Dictionary {i['architecture']} {i['d_in']} -> {i['d_sae']} "
                f"({i['format']}) {self.path!r}>")
