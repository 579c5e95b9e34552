"""runs_table.py — rewrites a latentdb database's run records in place (LMDB through
ctypes), as older latentdb versions wrote them, for the tests of reading them
(tests/reliability.sh, tests/dups.sh).

rewrite(path, change): change(key, record) -> (key, record) for each record of the
`runs` table; a returned key other than the old one replaces it. One transaction."""
import ctypes
import ctypes.util
import json

_lm = ctypes.CDLL(ctypes.util.find_library("lmdb"))


class _Val(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("data", ctypes.c_void_p)]


def _ok(rc):
    if rc:
        raise SystemExit("lmdb error %d" % rc)


def _val(b):
    return _Val(len(b), ctypes.cast(ctypes.c_char_p(b), ctypes.c_void_p))


def rewrite(path, change):
    env, txn, cur, dbi = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_uint()
    _ok(_lm.mdb_env_create(ctypes.byref(env)))
    _ok(_lm.mdb_env_set_maxdbs(env, 64))
    _ok(_lm.mdb_env_set_mapsize(env, ctypes.c_size_t(1 << 32)))
    _ok(_lm.mdb_env_open(env, path.encode(), 0, 0o644))
    _ok(_lm.mdb_txn_begin(env, None, 0, ctypes.byref(txn)))
    _ok(_lm.mdb_dbi_open(txn, b"runs", 0, ctypes.byref(dbi)))
    _ok(_lm.mdb_cursor_open(txn, dbi, ctypes.byref(cur)))
    recs, k, v, op = [], _Val(), _Val(), 0  # MDB_FIRST, then MDB_NEXT (8)
    while _lm.mdb_cursor_get(cur, ctypes.byref(k), ctypes.byref(v), op) == 0:
        recs.append((ctypes.string_at(k.data, k.size), ctypes.string_at(v.data, v.size)))
        op = 8
    _lm.mdb_cursor_close(cur)
    for key, val in recs:
        nk, r = change(key, json.loads(val))
        if nk != key:
            _ok(_lm.mdb_del(txn, dbi, ctypes.byref(_val(key)), None))
        new = json.dumps(r, separators=(",", ":")).encode()
        _ok(_lm.mdb_put(txn, dbi, ctypes.byref(_val(nk)), ctypes.byref(_val(new)), 0))
    _ok(_lm.mdb_txn_commit(txn))
    _lm.mdb_env_close(env)
