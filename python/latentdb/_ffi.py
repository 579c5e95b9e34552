"""The C library through ctypes: loading it, its prototypes, mirrors of the structs
that latentdb.h declares, and the exceptions that carry its messages.

Everything else in the package calls the library through this module. The struct
mirrors follow include/latentdb.h field for field; tests/python/abi.c prints the C
compiler's sizes and offsets and the tests compare them with these.
"""
from __future__ import annotations

import ctypes as C
import os
import pathlib
from typing import Optional, TypeVar

# ---- errors -----------------------------------------------------------------

OK = 0
ENOMEM, EIO, EFORMAT, EUNSUPPORTED, EINVAL, EBLAS, ENOTFOUND, EBADVALUE = range(-1, -9, -1)


class Error(Exception):
    """A failure reported by the latentdb library; ``code`` is its LDB_E* number and
    the message is the library's own (what, where, and what was expected)."""

    def __init__(self, message: str, code: int = EINVAL) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NotFoundError(Error, LookupError):
    """A named database, dictionary, sequence, file or run does not exist."""


class InvalidArgumentError(Error, ValueError):
    """An argument the library refused (out of range, wrong combination)."""


class FormatError(Error):
    """A file or database record is malformed or damaged."""


class UnsupportedError(Error):
    """Well-formed, but something latentdb does not handle (or cannot run here)."""


class BadValueError(Error, ValueError):
    """A value outside its domain: NaN or Inf in activations, a code too large."""


class IOError_(Error, OSError):
    """The operating system refused a read, write, map or open."""


class OutOfMemoryError(Error, MemoryError):
    """The library ran out of memory."""


_BY_CODE = {
    ENOMEM: OutOfMemoryError,
    EIO: IOError_,
    EFORMAT: FormatError,
    EUNSUPPORTED: UnsupportedError,
    EINVAL: InvalidArgumentError,
    EBLAS: UnsupportedError,
    ENOTFOUND: NotFoundError,
    EBADVALUE: BadValueError,
}


def error(code: int, message: str) -> Error:
    """The exception for return code ``code`` with the library's message."""
    return _BY_CODE.get(code, Error)(message or strerror(code), code)


_C = TypeVar("_C", bound="Closing")


class Closing:
    """A handle closed by ``close()``: a context manager, closed when collected too."""

    def close(self) -> None:  # pragma: no cover - each handle defines it
        raise NotImplementedError

    def __enter__(self: "_C") -> "_C":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


# ---- the library --------------------------------------------------------------

def _find_library() -> str:
    env = os.environ.get("LATENTDB_LIB")
    if env:
        return env
    here = pathlib.Path(__file__).resolve().parent
    for cand in (here / "liblatentdb.so", here.parent.parent / "lib" / "liblatentdb.so"):
        if cand.exists():
            return str(cand)
    raise ImportError("latentdb: liblatentdb.so not found: build latentdb (make) and install the "
                      "package from its checkout (pip install ./python), or set LATENTDB_LIB to "
                      "the library's path")


LIBRARY_PATH = _find_library()
lib = C.CDLL(LIBRARY_PATH)  # CDLL: ctypes releases the GIL around every call

c_u8p = C.POINTER(C.c_uint8)
c_u32p = C.POINTER(C.c_uint32)
c_u64p = C.POINTER(C.c_uint64)
c_floatp = C.POINTER(C.c_float)


class Struct(C.Structure):
    """A struct of latentdb.h."""


def _s(name: str, fields: list) -> type:
    return type(name, (Struct,), {"_fields_": fields})


DictInfo = _s("DictInfo", [
    ("format", C.c_char_p), ("architecture", C.c_char_p), ("type", C.c_char_p),
    ("dtype", C.c_char_p), ("hook_in", C.c_char_p), ("hook_out", C.c_char_p),
    ("model", C.c_char_p), ("normalize", C.c_char_p), ("weights_path", C.c_char_p),
    ("config_path", C.c_char_p), ("d_in", C.c_uint32), ("d_out", C.c_uint32),
    ("d_sae", C.c_uint32), ("k", C.c_uint32), ("l0", C.c_double), ("sub_b_dec", C.c_int),
    ("has_skip", C.c_int), ("relu_first", C.c_int), ("n_layers", C.c_uint32),
    ("kind", C.c_char_p)])
DictLayer = _s("DictLayer", [
    ("layer", C.c_uint32), ("d_in", C.c_uint32), ("d_sae", C.c_uint32), ("d_out", C.c_uint32),
    ("offset", C.c_uint32), ("hook_in", C.c_char_p), ("hook_out", C.c_char_p),
    ("weights_path", C.c_char_p)])
EncoderOpts = _s("EncoderOpts", [
    ("size", C.c_uint32), ("precision", C.c_int), ("threads", C.c_int),
    ("tile_rows", C.c_uint32)])
Codes = _s("Codes", [
    ("row0", C.c_uint64), ("n_rows", C.c_uint32), ("start", c_u64p), ("latent", c_u32p),
    ("value", c_floatp)])
Example = _s("Example", [
    ("seq", C.c_uint64), ("pos", C.c_uint32), ("value", C.c_float), ("ctx_start", C.c_uint32),
    ("ctx_len", C.c_uint32), ("tokens", c_u32p), ("values", c_floatp)])
Examples = _s("Examples", [("n", C.c_uint32), ("ex", C.POINTER(Example))])
TopOpts = _s("TopOpts", [
    ("size", C.c_uint32), ("k", C.c_uint32), ("context", C.c_uint32), ("distinct_seq", C.c_int),
    ("include_special", C.c_int), ("positions_only", C.c_int)])
Bin = _s("Bin", [("lo", C.c_double), ("hi", C.c_double), ("count", C.c_uint64)])
LatentInfo = _s("LatentInfo", [
    ("count", C.c_uint64), ("nseq", C.c_uint64), ("density", C.c_double), ("max", C.c_double),
    ("mean", C.c_double), ("std", C.c_double), ("label", C.c_char_p), ("nbins", C.c_uint32),
    ("hist", C.POINTER(Bin))])
Density = _s("Density", [
    ("n_tokens", C.c_uint64), ("n_latents", C.c_uint32), ("dead", C.c_uint32),
    ("nbins", C.c_uint32), ("bins", C.POINTER(Bin)), ("counts", c_u64p), ("first", C.c_uint32)])
DictUsage = _s("DictUsage", [
    ("name", C.c_char_p), ("d_sae", C.c_uint32), ("nnz", C.c_uint64), ("bytes", C.c_uint64),
    ("positions", C.c_uint64)])
Info = _s("Info", [
    ("n_seq", C.c_uint64), ("n_tokens", C.c_uint64), ("n_ordinary", C.c_uint64),
    ("bytes", C.c_uint64), ("n_dicts", C.c_uint32), ("dicts", C.POINTER(DictUsage)),
    ("values", C.c_int), ("n_skip", C.c_uint32), ("skip", c_u32p)])
CoocItem = _s("CoocItem", [
    ("latent", C.c_uint32), ("count", C.c_uint64), ("count_other", C.c_uint64),
    ("jaccard", C.c_double), ("npmi", C.c_double)])
Cooc = _s("Cooc", [
    ("count", C.c_uint64), ("units", C.c_uint64), ("n", C.c_uint32),
    ("items", C.POINTER(CoocItem))])
SampleGroup = _s("SampleGroup", [
    ("lo", C.c_double), ("hi", C.c_double), ("count", C.c_uint64), ("ex", Examples)])
Samples = _s("Samples", [("n", C.c_uint32), ("groups", C.POINTER(SampleGroup))])
SeqLatent = _s("SeqLatent", [("dict", C.c_uint16), ("latent", C.c_uint32), ("value", C.c_float)])
SeqView = _s("SeqView", [
    ("seq", C.c_uint64), ("source", C.c_char_p), ("len", C.c_uint32), ("tokens", c_u32p),
    ("start", c_u64p), ("lat", C.POINTER(SeqLatent)), ("n_dicts", C.c_uint32),
    ("dict_names", C.POINTER(C.c_char_p))])
SearchItem = _s("SearchItem", [
    ("latent", C.c_uint32), ("hits", C.c_uint64), ("score", C.c_double),
    ("precision", C.c_double), ("density", C.c_double), ("mean_value", C.c_double)])
Search = _s("Search", [
    ("occurrences", C.c_uint64), ("n", C.c_uint32), ("items", C.POINTER(SearchItem))])
Activations = _s("Activations", [
    ("n", C.c_uint64), ("seq", c_u64p), ("pos", c_u32p), ("value", c_floatp)])
Csr = _s("Csr", [
    ("n_rows", C.c_uint64), ("n_cols", C.c_uint32), ("indptr", c_u64p), ("indices", c_u32p),
    ("data", c_floatp), ("n_seq", C.c_uint64), ("seq_row", c_u64p)])
Tokens = _s("Tokens", [
    ("n", C.c_uint64), ("tokens", c_u32p), ("n_seq", C.c_uint64), ("seq_off", c_u64p)])
Labels = _s("Labels", [("n", C.c_uint32), ("latent", c_u32p), ("text", C.POINTER(C.c_char_p))])
StreamOpts = _s("StreamOpts", [
    ("size", C.c_uint32), ("dicts", C.POINTER(C.c_char_p)), ("n_dicts", C.c_int),
    ("source", C.c_char_p), ("ctx", C.c_uint32), ("precision", C.c_int)])
CheckReport = _s("CheckReport", [
    ("n_seq", C.c_uint64), ("n_tokens", C.c_uint64), ("nnz", C.c_uint64),
    ("n_blocks", C.c_uint64), ("n_problems", C.c_uint64), ("n_store_problems", C.c_uint64),
    ("problems", C.c_char * 4096), ("notes", C.c_char * 1024), ("digest", C.c_char * 65)])
TokenizerInfo = _s("TokenizerInfo", [
    ("n_vocab", C.c_uint32), ("n_merges", C.c_uint32), ("n_added", C.c_uint32),
    ("bos", C.c_uint32), ("eos", C.c_uint32), ("pad", C.c_uint32), ("unk", C.c_uint32)])

# the structs tests/python/abi.c measures, by their C names
ABI = {
    "ldb_dict_info": DictInfo, "ldb_dict_layer": DictLayer, "ldb_encoder_opts": EncoderOpts,
    "ldb_codes": Codes, "ldb_example": Example, "ldb_examples": Examples, "ldb_top_opts": TopOpts,
    "ldb_bin": Bin, "ldb_latent_info": LatentInfo, "ldb_density": Density,
    "ldb_dict_usage": DictUsage, "ldb_info": Info, "ldb_cooc_item": CoocItem, "ldb_cooc": Cooc,
    "ldb_sample_group": SampleGroup, "ldb_samples": Samples, "ldb_seq_latent": SeqLatent,
    "ldb_seqview": SeqView, "ldb_search_item": SearchItem, "ldb_search": Search,
    "ldb_activations": Activations, "ldb_csr": Csr, "ldb_tokens": Tokens, "ldb_labels": Labels,
    "ldb_stream_opts": StreamOpts, "ldb_check_report": CheckReport,
    "ldb_tokenizer_info": TokenizerInfo,
}

CODES_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.POINTER(Codes))

P = C.c_void_p
_protos = {
    "ldb_version": (C.c_char_p, []),
    "ldb_free": (None, [P]),
    "ldb_strerror": (C.c_char_p, [C.c_int]),
    # dictionaries and encoders
    "ldb_dict_open": (C.c_int, [C.c_char_p, C.POINTER(P)]),
    "ldb_dict_close": (None, [P]),
    "ldb_dict_errmsg": (C.c_char_p, [P]),
    "ldb_dict_get_info": (C.POINTER(DictInfo), [P]),
    "ldb_dict_get_layer": (C.POINTER(DictLayer), [P, C.c_uint32]),
    "ldb_encoder_opts_init": (None, [C.POINTER(EncoderOpts)]),
    "ldb_encoder_new": (C.c_int, [P, C.POINTER(EncoderOpts), C.POINTER(P)]),
    "ldb_encoder_free": (None, [P]),
    "ldb_encoder_errmsg": (C.c_char_p, [P]),
    "ldb_encoder_encode": (C.c_int, [P, P, C.c_int, C.c_uint64, CODES_FN, P]),
    "ldb_encoder_encode_layers": (C.c_int, [P, C.POINTER(P), C.c_size_t, C.c_int, C.c_uint64,
                                            CODES_FN, P]),
    "ldb_encoder_gemm_name": (C.c_char_p, [P]),
    # databases
    "ldb_db_open": (C.c_int, [C.c_char_p, C.c_int, C.POINTER(P)]),
    "ldb_db_close": (None, [P]),
    "ldb_db_errmsg": (C.c_char_p, [P]),
    "ldb_db_dict_count": (C.c_int, [P]),
    "ldb_db_dict_json": (C.c_char_p, [P, C.c_int]),
    "ldb_db_dict_layers": (C.c_uint32, [P, C.c_char_p]),
    "ldb_db_latent_parse": (C.c_int, [P, C.c_char_p, C.c_char_p, c_u32p]),
    "ldb_db_latent_layer": (C.c_int, [P, C.c_char_p, C.c_uint32, c_u32p, c_u32p]),
    "ldb_db_label": (C.c_int, [P, C.c_char_p, C.c_uint32, C.c_char_p]),
    "ldb_db_tokenizer": (C.c_int, [P, C.POINTER(P)]),
    "ldb_db_check": (C.c_int, [P, C.POINTER(CheckReport)]),
    # queries
    "ldb_top_opts_init": (None, [C.POINTER(TopOpts)]),
    "ldb_query_top": (C.c_int, [P, C.c_char_p, C.c_uint32, C.POINTER(TopOpts),
                                C.POINTER(C.POINTER(Examples))]),
    "ldb_examples_free": (None, [C.POINTER(Examples)]),
    "ldb_examples_contexts": (C.c_uint64, [C.POINTER(Examples), c_u32p, c_floatp]),
    "ldb_query_latent": (C.c_int, [P, C.c_char_p, C.c_uint32, C.c_uint32,
                                   C.POINTER(C.POINTER(LatentInfo))]),
    "ldb_latent_info_free": (None, [C.POINTER(LatentInfo)]),
    "ldb_query_density_layer": (C.c_int, [P, C.c_char_p, C.c_uint32, C.c_uint32,
                                          C.POINTER(C.POINTER(Density))]),
    "ldb_density_free": (None, [C.POINTER(Density)]),
    "ldb_query_info": (C.c_int, [P, C.POINTER(C.POINTER(Info))]),
    "ldb_info_free": (None, [C.POINTER(Info)]),
    "ldb_query_cooc_layer": (C.c_int, [P, C.c_char_p, C.c_uint32, C.c_char_p, C.c_uint32,
                                       C.c_uint32, C.c_int, C.c_uint32, C.c_int,
                                       C.POINTER(C.POINTER(Cooc))]),
    "ldb_cooc_free": (None, [C.POINTER(Cooc)]),
    "ldb_query_samples": (C.c_int, [P, C.c_char_p, C.c_uint32, C.c_uint32, C.c_uint32, C.c_int,
                                    C.c_uint64, C.c_uint32, C.POINTER(C.POINTER(Samples))]),
    "ldb_samples_free": (None, [C.POINTER(Samples)]),
    "ldb_query_seq": (C.c_int, [P, C.c_uint64, C.c_char_p, C.c_uint32,
                                C.POINTER(C.POINTER(SeqView))]),
    "ldb_seqview_free": (None, [C.POINTER(SeqView)]),
    "ldb_query_search": (C.c_int, [P, C.c_char_p, c_u32p, C.c_size_t, C.c_int, C.c_uint32,
                                   C.POINTER(C.POINTER(Search))]),
    "ldb_search_free": (None, [C.POINTER(Search)]),
    "ldb_query_activations": (C.c_int, [P, C.c_char_p, C.c_uint32, C.c_int,
                                        C.POINTER(C.POINTER(Activations))]),
    "ldb_activations_free": (None, [C.POINTER(Activations)]),
    "ldb_query_codes": (C.c_int, [P, C.c_char_p, C.c_uint64, C.c_uint64,
                                  C.POINTER(C.POINTER(Csr))]),
    "ldb_csr_free": (None, [C.POINTER(Csr)]),
    "ldb_query_tokens": (C.c_int, [P, C.c_uint64, C.c_uint64, C.POINTER(C.POINTER(Tokens))]),
    "ldb_tokens_free": (None, [C.POINTER(Tokens)]),
    "ldb_query_labels": (C.c_int, [P, C.c_char_p, C.POINTER(C.POINTER(Labels))]),
    "ldb_labels_free": (None, [C.POINTER(Labels)]),
    # streaming ingest
    "ldb_stream_opts_init": (None, [C.POINTER(StreamOpts)]),
    "ldb_stream_open": (C.c_int, [P, C.POINTER(StreamOpts), C.POINTER(P)]),
    "ldb_stream_committed_rows": (C.c_uint64, [P]),
    "ldb_stream_ctx": (C.c_uint32, [P]),
    "ldb_stream_add": (C.c_int, [P, C.c_uint64, c_u32p, C.POINTER(P), C.c_int, C.c_int,
                                 C.c_uint64]),
    "ldb_stream_close": (C.c_int, [P, C.c_int]),
    # tokenizers
    "ldb_tokenizer_open": (C.c_int, [C.c_char_p, C.POINTER(P)]),
    "ldb_tokenizer_close": (None, [P]),
    "ldb_tokenizer_errmsg": (C.c_char_p, [P]),
    "ldb_tokenizer_encode": (C.c_int, [P, C.c_char_p, C.c_size_t, C.POINTER(c_u32p),
                                       C.POINTER(C.c_size_t)]),
    "ldb_tokenizer_decode": (C.c_int, [P, c_u32p, C.c_size_t, C.POINTER(C.c_void_p),
                                       C.POINTER(C.c_size_t)]),
    "ldb_tokenizer_piece_text": (C.c_size_t, [P, C.c_uint32, C.c_char_p, C.c_size_t]),
    "ldb_tokenizer_get_info": (C.POINTER(TokenizerInfo), [P]),
}
for _name, (_res, _args) in _protos.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args

# element types (latentdb.h)
F32, F16, BF16 = 0, 1, 2
PRECISION_F32, PRECISION_BF16, PRECISION_EXACT = 0, 1, 2
OPEN_READ, OPEN_WRITE = 0, 1
ALL_LAYERS = 0xFFFFFFFF
VALUE_NAMES = ("bf16", "f16", "f32")


def strerror(code: int) -> str:
    return lib.ldb_strerror(code).decode()


def text(b: Optional[bytes]) -> str:
    """A C string of the library as text (invalid UTF-8 shown as U+FFFD)."""
    return "" if b is None else b.decode("utf-8", "replace")


def version() -> str:
    """The C library's version."""
    return text(lib.ldb_version())
