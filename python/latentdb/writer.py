"""Streaming ingest: ``DB.writer``. A model loop hands its rows over batch by batch;
nothing is written to disk but the database."""
from __future__ import annotations

import ctypes as C
import threading
from typing import Any, List, Optional, Sequence, Union

import numpy as np

from . import _ffi
from .dictionary import _PRECISIONS, act_dtype, as_acts


class Writer:
    """One run of rows encoded through the writer's dictionaries, named by its
    ``source``. Every ``add`` commits its rows (sequences, codes and the run's
    progress in one transaction), so a killed process loses at most the batch in
    flight. A writer opened again with the same source, dictionaries and ctx goes on
    with the run: ``committed_rows`` says how far it got, and rows added again from
    the start are checked against it (their tokens) and skipped, so a loop can
    simply start over. The codes equal an ``ingest`` of the same arrays.

    Use it as a context manager: leaving the block normally marks the run finished
    (``close(finish=True)``); an exception leaves it open, to go on later."""

    def __init__(self, db, dicts: Union[str, Sequence[str]], source: str, ctx: Optional[int],
                 precision: str) -> None:
        if isinstance(dicts, str):
            dicts = [dicts]
        if not dicts or not all(isinstance(d, str) for d in dicts):
            raise TypeError("dict is a dictionary's name, or a list of names")
        if not isinstance(source, str) or not source:
            raise ValueError("source must be a non-empty str: it names the run")
        if precision not in _PRECISIONS:
            raise ValueError(f"precision takes exact, f32 or bf16, not {precision!r}")
        if ctx is not None and (isinstance(ctx, bool) or not isinstance(ctx, int) or
                                not 0 < ctx < 2**32):
            raise ValueError(f"ctx is a positive int, not {ctx!r}")
        if not db.writable:
            raise _ffi.InvalidArgumentError(f"{db.path}: open the database with write=True to "
                                            "ingest into it", _ffi.EINVAL)
        self.db = db
        self.dicts = list(dicts)
        self.source = source
        self.ctx = ctx
        self.precision = precision
        self._h = C.c_void_p()
        self._lock = threading.Lock()  # the C stream is one thread at a time
        self._next = 0
        self._closed = False
        self._layers = None
        if ctx is not None:
            self._open(ctx)

    def _open(self, ctx: int) -> None:
        o = _ffi.StreamOpts()
        _ffi.lib.ldb_stream_opts_init(C.byref(o))
        names = (C.c_char_p * len(self.dicts))(*[d.encode() for d in self.dicts])
        o.dicts = names
        o.n_dicts = len(self.dicts)
        o.source = self.source.encode()
        o.ctx = ctx
        o.precision = _PRECISIONS[self.precision]
        with self.db._use():
            rc = _ffi.lib.ldb_stream_open(self.db._h, C.byref(o), C.byref(self._h))
            if rc:
                msg = _ffi.text(_ffi.lib.ldb_db_errmsg(self.db._h))
                _ffi.lib.ldb_stream_close(self._h, 0)
                self._h = C.c_void_p()
                raise _ffi.error(rc, msg)
            self._layers = max(1, _ffi.lib.ldb_db_dict_layers(self.db._h, self.dicts[0].encode()))
        recs = {r["name"]: r for r in self.db.dicts()}
        self._d_in = int(recs[self.dicts[0]]["d_in"])
        self.ctx = int(_ffi.lib.ldb_stream_ctx(self._h))

    @property
    def committed_rows(self) -> int:
        """Rows the run has stored (by this process or an earlier one): 0 for a source
        no stream of these dictionaries has used yet."""
        with self._lock:
            self._check()
            if not self._h:
                try:
                    self._open(0)  # the existing stream of this source, with its ctx
                except _ffi.NotFoundError:
                    return 0
            return int(_ffi.lib.ldb_stream_committed_rows(self._h))

    @property
    def next_row(self) -> int:
        """The run's row number the next add starts at."""
        return self._next

    def _check(self) -> None:
        if self._closed:
            from .db import ClosedError
            raise ClosedError(f"writer of {self.source!r} is closed", _ffi.EINVAL)

    def add(self, tokens: Any, acts: Any, row: Optional[int] = None) -> None:
        """Adds rows: ``tokens`` [rows, ctx] integer ids, ``acts`` the activations of
        their positions, [rows, ctx, d_in] (float32, float16, or uint16 holding
        bfloat16; read in place when C-contiguous), or for a multi-layer dictionary
        [rows, ctx, n_layers, d_in] or a list of one [rows, ctx, d_in] array per
        layer. Rows are numbered on from 0 across adds; ``row`` may skip ahead to
        ``committed_rows`` instead of giving the committed rows again."""
        with self._lock:  # the C stream is one thread at a time
            self._add(tokens, acts, row)

    def _add(self, tokens: Any, acts: Any, row: Optional[int]) -> None:
        self._check()
        t = np.asarray(tokens)
        if t.ndim != 2 or not np.issubdtype(t.dtype, np.integer):
            raise ValueError(f"tokens must be an integer array [rows, ctx], not {t.dtype} of "
                             f"shape {t.shape}")
        rows, ctx = t.shape
        if rows == 0:
            return
        if ctx == 0:
            raise ValueError("tokens of rows of 0 positions")
        if t.size and (t.min() < 0 or t.max() > 0xFFFFFFFF):
            raise ValueError("token ids must be in 0 .. 2**32 - 1")
        if self.ctx is None:
            self._open(ctx)
        elif ctx != self.ctx:
            raise ValueError(f"rows of {ctx} tokens, but this writer's rows have {self.ctx}")
        t = np.ascontiguousarray(t, np.uint32)
        if isinstance(acts, (list, tuple)):
            arrs = [as_acts(a) for a in acts]
            if len(arrs) != self._layers:
                raise ValueError(f"{len(arrs)} activations arrays for dictionaries of "
                                 f"{self._layers} layers")
            for a in arrs:
                if a.ndim != 3 or a.shape != arrs[0].shape or a.shape[:2] != (rows, ctx) or \
                        a.dtype != arrs[0].dtype:
                    raise ValueError(f"each layer's activations must be [rows, ctx, d_in] = "
                                     f"[{rows}, {ctx}, d_in], of one dtype; got {a.shape} "
                                     f"{a.dtype}")
        else:
            a = as_acts(acts)
            nd = 4 if self._layers and self._layers > 1 else 3
            if a.ndim != nd or a.shape[:2] != (rows, ctx):
                want = "[rows, ctx, n_layers, d_in]" if nd == 4 else "[rows, ctx, d_in]"
                raise ValueError(f"activations of shape {a.shape}: expected {want} with rows, ctx "
                                 f"= {rows}, {ctx}")
            if nd == 4 and a.shape[2] != self._layers:
                raise ValueError(f"activations of {a.shape[2]} layers for dictionaries of "
                                 f"{self._layers}")
            arrs = [a]
        if arrs[0].shape[-1] != self._d_in:
            raise ValueError(f"activations of d_in {arrs[0].shape[-1]}, but {self.dicts[0]!r} "
                             f"reads d_in {self._d_in}")
        dt = act_dtype(arrs[0])
        ptrs = (C.c_void_p * len(arrs))(*[a.ctypes.data for a in arrs])
        with self.db._use():
            r0 = self._next if row is None else int(row)
            rc = _ffi.lib.ldb_stream_add(self._h, r0, t.ctypes.data_as(_ffi.c_u32p), ptrs,
                                         len(arrs), dt, rows)
            if rc:
                raise _ffi.error(rc, _ffi.text(_ffi.lib.ldb_db_errmsg(self.db._h)))
            self._next = r0 + rows

    def close(self, finish: bool = False) -> None:
        """Closes the writer; with ``finish`` marks the run finished first (a finished
        run is not opened again)."""
        with self._lock:
            self._close(finish)

    def _close(self, finish: bool) -> None:
        if self._closed:
            return
        self._closed = True
        if self._h:
            with self.db._use():
                rc = _ffi.lib.ldb_stream_close(self._h, bool(finish))
                self._h = C.c_void_p()
                if rc:
                    raise _ffi.error(rc, _ffi.text(_ffi.lib.ldb_db_errmsg(self.db._h)))

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, exc_type, *exc: Any) -> None:
        self.close(finish=exc_type is None)

    def __del__(self) -> None:
        try:
            if not self._closed and self._h and not self.db._closed:
                self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"<latentdb.Writer {self.source!r} -> {self.dicts}, next row {self._next}>"
