#!/usr/bin/python3
"""Turns `make bench` results into the targets table.

usage: report.py RESULTS_DIR [BENCHMARKS.md SVG_DIR]

Reads RESULTS_DIR/*.txt ("key value" lines written by tools/bench/run.sh), prints
the table (what | measured | target | peer | holds), and when given a markdown file
replaces the part between its "<!-- results:begin -->" and "<!-- results:end -->"
markers with the table and the machine, and writes the plots into SVG_DIR.
"""
import glob
import html
import math
import os
import re
import sys


def load(path):
    d = {}
    if os.path.exists(path):
        for line in open(path):
            k, _, v = line.strip().partition(" ")
            if k:
                d[k] = v
    return d


def num(d, k):
    try:
        return float(d[k])
    except (KeyError, ValueError):
        return None


def by_size(rdir, prefix):
    out = {}
    for p in glob.glob(os.path.join(rdir, prefix + "_*.txt")):
        m = re.search(r"_(\d+)\.txt$", p)
        if m:
            out[int(m.group(1))] = load(p)
    return dict(sorted(out.items()))


def fmt_ms(x):
    if x is None:
        return "-"
    return "%.3f ms" % x if x < 1 else "%.1f ms" % x if x < 100 else "%.0f ms" % x


def human(n):
    return "%.1fM" % (n / 1e6) if n >= 1e6 else "%.0fk" % (n / 1e3)


def rows(rdir):
    mach = load(os.path.join(rdir, "machine.txt"))
    ing = by_size(rdir, "ingest")
    qry = by_size(rdir, "query")
    npe = load(os.path.join(rdir, "numpy_encode.txt"))
    npq = load(os.path.join(rdir, "numpy_query.txt"))
    bf = load(os.path.join(rdir, "bf16.txt"))
    bfi = load(os.path.join(rdir, "bf16_ingest.txt"))
    bfi_tps = int(bfi["tokens"]) / float(bfi["ingest_s"]) if "ingest_s" in bfi else None
    text = ""
    if os.path.exists(os.path.join(rdir, "text.raw")):
        text = open(os.path.join(rdir, "text.raw")).read()
    out = []  # (what, measured, target, peer, holds: True/False/None)
    np_tps = num(npe, "numpy_encode_tps")
    ratios = []
    for t, d in ing.items():
        tps = int(d["tokens"]) / float(d["ingest_s"]) if "ingest_s" in d else None
        ceil = num(d, "ceiling_tps")
        if tps and ceil:
            out.append(("ingest %s tokens, 640 -> 16384, %s threads" % (human(t), d.get("threads", "?")),
                        "%.0f tok/s = %.1f%% of ceiling" % (tps, 100 * tps / ceil),
                        ">= 80% of ceiling",
                        "ceiling %.0f tok/s (before %s, after %s)" % (
                            ceil, d.get("ceiling_before_tps", "?"), d.get("ceiling_after_tps", "?")),
                        tps >= 0.8 * ceil))
            ratios.append((t, tps, ceil))
    if ratios and np_tps:
        out.append(("ingest vs the numpy/scipy pipeline",
                    " / ".join("%.1fx (%s)" % (tps / np_tps, human(t)) for t, tps, _ in ratios),
                    ">= 5x numpy", "numpy %.0f tok/s (%s kernels); the f32 ceiling itself is %.1fx numpy%s" % (
                        np_tps, npe.get("numpy_core", "OpenBLAS's"), max(c for _, _, c in ratios) / np_tps,
                        "; bf16 ingest %.1fx" % (bfi_tps / np_tps) if bfi_tps else ""),
                    min(tps / np_tps for _, tps, _ in ratios) >= 5))
    if bf:
        tps, ceil, flips = num(bf, "bf16_tps"), num(bf, "ceiling_tps"), num(bf, "flip_rate")
        if tps and ceil:
            out.append(("ingest --precision bf16, the encode alone", "%.0f tok/s = %.2fx f32 ceiling" % (tps, tps / ceil),
                        ">= 1.6x f32 ceiling", "flip rate %s" % ("%.3f%%" % (100 * flips) if flips is not None else "-"),
                        tps >= 1.6 * ceil))
        else:
            out.append(("ingest --precision bf16", bf.get("bf16_status", "not measured"), ">= 1.6x f32 ceiling",
                        "-", False))
    if bfi_tps and num(bfi, "ceiling_tps"):
        ceil = num(bfi, "ceiling_tps")
        out.append(("ingest --precision bf16, %s tokens, end to end" % human(int(bfi["tokens"])),
                    "%.0f tok/s = %.2fx f32 ceiling" % (bfi_tps, bfi_tps / ceil), ">= 1.6x f32 ceiling",
                    "ceiling %.0f tok/s (before %s, after %s); RssAnon %.0f MiB" % (
                        ceil, bfi.get("ceiling_before_tps", "?"), bfi.get("ceiling_after_tps", "?"),
                        (num(bfi, "rssanon_kib") or 0) / 1024),
                    bfi_tps >= 1.6 * ceil))
    # exact codes (issue 23): the target is a multiple of the f32 ceiling that depends on the
    # bf16 hardware: AMX 2.5x, AVX512_BF16 1.5x, none 0.8x
    isa = ("amx" if mach.get("amx_bf16") == "1" else "avx512_bf16" if mach.get("avx512_bf16") == "1"
           else "f32")
    want = {"amx": 2.5, "avx512_bf16": 1.5, "f32": 0.8}[isa]
    ex = load(os.path.join(rdir, "exact_encode.txt"))
    ex_tps, ex_ceil = num(ex, "exact_tps"), num(ex, "ceiling_tps")
    if ex_tps and ex_ceil:
        fl, mv = num(ex, "exact_screens_flips"), num(ex, "exact_screens_moved")
        out.append(("exact encode alone, 640 -> 16384, realistic norms",
                    "%.0f tok/s = %.2fx f32 ceiling; %.3f%% of pairs refined" % (
                        ex_tps, ex_tps / ex_ceil, 100 * (num(ex, "refined_fraction") or 0)),
                    ">= %.1fx f32 ceiling (%s); 0 codes differ from the reference and between screens" % (want, isa),
                    "%s; against the reference of every latent (no screen) on %s rows: %s flips, %s "
                    "values moved of %s codes; f32 screen %s tok/s, %s flips, %s values moved of %s "
                    "codes; approximate bf16 %s tok/s, flip rate %s" % (
                        ex.get("exact_gemm", "?"), ex.get("reference_rows", "?"), ex.get("reference_flips", "?"),
                        ex.get("reference_moved", "?"), ex.get("reference_codes", "?"),
                        ex.get("exact_f32_tps", "?"), ex.get("exact_screens_flips", "?"),
                        ex.get("exact_screens_moved", "?"), ex.get("exact_codes", "?"), ex.get("bf16_tps", "?"),
                        "%.3f%%" % (100 * num(ex, "flip_rate")) if num(ex, "flip_rate") is not None else "-"),
                    ex_tps >= want * ex_ceil and fl == 0 and mv == 0 and
                    num(ex, "reference_flips") == 0 and num(ex, "reference_moved") == 0))
    # a wide dictionary's ceiling is sgemm in the encoder's own tile shape (64 rows), which
    # repacks W_enc for every tile; its target is held against the better of that and the
    # M = 8192 sgemm's FLOP rate (the 640 -> 16384 ceiling) at its shape
    m8192_flops = (num(load(os.path.join(rdir, "exact_16384.txt")), "ceiling_tps") or 0) * 640 * 16384
    for fname, what, din, dsae in (("exact_16384.txt", "640 -> 16384, realistic norms", 640, 16384),
                                   ("exact_262144.txt", "1152 -> 262144, realistic norms, calibrated L0 40",
                                    1152, 262144)):
        d = load(os.path.join(rdir, fname))
        tps = int(d["tokens"]) / float(d["ingest_s"]) if "ingest_s" in d else None
        tile_ceil = ceil = num(d, "ceiling_tps")
        if tps and ceil:
            enc = num(d, "encode_tps")
            writer = "; the writer %.0f%% of the time (1 - ingest / encode alone)" % (
                100 * (1 - tps / enc)) if enc and dsae == 16384 else ""
            peak = ""
            if dsae > 16384 and m8192_flops:
                m8192 = m8192_flops / (din * dsae)
                peak = "; %.2fx the M = 8192 sgemm rate (%.0f tok/s at this shape)" % (tps / m8192, m8192)
                ceil = max(ceil, m8192)
            out.append(("exact ingest %s tokens, %s, end to end" % (human(int(d["tokens"])), what),
                        "%.0f tok/s = %.2fx f32 ceiling%s; %s%% of pairs refined" % (
                            tps, tps / tile_ceil, peak, d.get("refined_pct", "?")),
                        ">= %.1fx f32 ceiling (%s)" % (want, isa),
                        "ceiling %.0f tok/s (%s); RssAnon %.0f MiB of which W_enc copies %s MiB; "
                        "L0 %s%s" % (tile_ceil, d.get("ceiling_shape", "?").replace("_", " "),
                                     (num(d, "rssanon_kib") or 0) / 1024, d.get("encoder_mib", "?"),
                                     d.get("encode_l0", "?"), writer),
                        tps >= want * ceil))
    dg = load(os.path.join(rdir, "exact_digest.txt"))
    if dg.get("digest_exact"):
        same = dg.get("digest_exact") == dg.get("digest_f32")
        out.append(("exact codes, %s-token planted corpus: digest of the default = --precision f32" %
                    human(int(dg.get("tokens", 0))), "equal" if same else "DIFFERENT",
                    "equal", dg.get("digest_exact", "?")[:16], same))
    py = load(os.path.join(rdir, "python.txt"))
    if py.get("top_overhead_us"):
        ov = float(py["top_overhead_us"])
        out.append(("Python: db.top(k=20) per call, over the C calls", "%.1f us (C %.1f us)" % (
            ov, float(py["top_c_us"])), "<= 50 us", "the same two C calls through ctypes", ov <= 50))
    if py.get("activations_ms"):
        ms = float(py["activations_ms"])
        out.append(("Python: db.activations of a latent with %s codes" % py["activations_codes"],
                    "%.0f ms" % ms, "< 50 ms", "-", ms < 50))
    if py.get("codes_s"):
        s_ = float(py["codes_s"])
        out.append(("Python: db.codes of %s positions (%s codes) as scipy CSR" % (
            py["codes_positions"], py["codes_nnz"]), "%.2f s" % s_, "< 1 s", "-", s_ < 1))
    if py.get("writer_ratio"):
        r_ = float(py["writer_ratio"])
        same = py.get("writer_same_digest") == "1"
        out.append(("Python: streaming writer (w.add), %s tokens, 640 -> 16384" % human(
            int(py["writer_tokens"])), "%s tok/s = %.1f%% of the CLI ingest; digest %s" % (
            py["writer_py_tps"], 100 * r_, "equal" if same else "DIFFERENT"),
            ">= 95% of the CLI ingest", "latentdb ingest %s tok/s" % py["writer_cli_tps"],
            r_ >= 0.95 and same))
    wb = load(os.path.join(rdir, "web.txt"))
    for tag, limit in (("demo", 0.2), ("q10m", 1.0)):
        if not wb.get(tag + "_cooc_window5_s"):
            continue
        toks = human(int(wb[tag + "_tokens"]))
        for sc, key in (("window:5", "window5"), ("seq", "seq")):
            t_ = float(wb["%s_cooc_%s_s" % (tag, key)])
            out.append(("cooc --scope %s, latent of %s firings, %s tokens (CLI, end to end)" % (
                sc, wb[tag + "_latent_count"], toks), "%.0f ms" % (1000 * t_),
                "< %.0f ms" % (1000 * limit), "token scope %.0f ms; samples %.0f ms; the CLI's own "
                "start (info) %.0f ms" % (1000 * float(wb[tag + "_cooc_token_s"]),
                                           1000 * float(wb[tag + "_samples_s"]),
                                           1000 * float(wb[tag + "_info_s"])), t_ < limit))
    for name, what in (("top", "/api/top"), ("page", "the latent's page")):
        if not wb.get("load_%s_p99_ms" % name):
            continue
        p99, errs = float(wb["load_%s_p99_ms" % name]), int(wb["load_%s_errors" % name])
        others = ", ".join("%s %s ms" % (k, wb["load_%s_p99_ms" % k]) for k in (
            "info", "latent", "density", "cooc", "samples", "search", "seq", "overview", "searchpage",
            "part_samples", "part_cooc", "part_cooc_w5")
            if wb.get("load_%s_p99_ms" % k))
        # memory: RssAnon (heap and stacks; the DB's mapped pages are file pages) at the
        # start, after the 10 s on /api/top, after the 10 s on the page, and after every
        # other endpoint: flat when each later stage adds less than 16 MiB to the first
        mib = [int(wb[k]) / 1024 for k in ("load_rss0_kib", "load_top_rss_kib",
                                            "load_page_rss_kib", "load_rss1_kib") if k in wb]
        flat = len(mib) == 4 and mib[2] - mib[1] < 16 and mib[3] - mib[1] < 16
        out.append(("serve: 50 clients for 10 s on %s, demo DB" % what,
                    "%s requests, %d errors, p99 %.1f ms (p50 %s ms); RssAnon %s MiB" % (
                        wb["load_%s_requests" % name], errs, p99, wb["load_%s_p50_ms" % name],
                        " -> ".join("%.0f" % m for m in mib)),
                    "0 errors, p99 < 50 ms, memory flat",
                    "p99 of the other endpoints (3 s each): " + others if name == "page" else "-",
                    errs == 0 and p99 < 50 and flat))
    for fname, what in (("wide_262144.txt", "640 -> 262144 (calibrated L0 40)"),
                        ("wide_1048576.txt", "640 -> 1048576 (calibrated L0 40)"),
                        ("clt_65536.txt", "4-layer CLT, 4 x 640 -> 16384")):
        d = load(os.path.join(rdir, fname))
        tps = int(d["tokens"]) / float(d["ingest_s"]) if "ingest_s" in d else None
        ceil = num(d, "ceiling_tps")
        if tps and ceil:
            rssm, wm = (num(d, "rssanon_kib") or 0) / 1024, (num(d, "weights_bytes") or 0) / 2**20
            out.append(("ingest %s tokens, %s" % (human(int(d["tokens"])), what),
                        "%.0f tok/s = %.1f%% of ceiling; L0 %s; RssAnon %.0f MiB" % (
                            tps, 100 * tps / ceil, d.get("encode_l0", "?"), rssm),
                        ">= 80% of ceiling; RssAnon <= 512 MiB + weights",
                        "ceiling %.0f tok/s (%s); weight files %.0f MiB; %s bytes/nnz" % (
                            ceil, d.get("ceiling_shape", "?").replace("_", " "), wm,
                            d.get("bytes_per_nnz", "?")),
                        tps >= 0.8 * ceil and rssm <= 512 + wm))
    rss = [(t, num(d, "rssanon_kib") / 1024, num(d, "weights_bytes") / 2**20) for t, d in ing.items()
           if num(d, "rssanon_kib")]
    if rss:
        lim = 512 + rss[0][2]
        worst = max(r[1] for r in rss)
        out.append(("ingest RssAnon peak, " + " / ".join(human(t) for t, _, _ in rss),
                    " / ".join("%.0f MiB" % r for _, r, _ in rss),
                    "<= %.0f MiB (512 + weights), flat" % lim, "-", worst <= lim))
    bpn = [(t, num(d, "bytes_per_nnz")) for t, d in ing.items() if num(d, "bytes_per_nnz")]
    bpn += [(t, num(d, "bytes_per_nnz")) for t, d in qry.items() if num(d, "bytes_per_nnz")]
    if bpn:
        sq = [num(d, "sqlite_bytes_per_nnz") for d in qry.values() if num(d, "sqlite_bytes_per_nnz")]
        out.append(("storage, both indexes, bf16 (bytes/code)",
                    " / ".join("%.2f (%s)" % (b, human(t)) for t, b in bpn), "<= 4.0",
                    "numpy .npz %s; SQLite %s" % ("%.2f" % num(npe, "numpy_bytes_per_nnz") if num(npe, "numpy_bytes_per_nnz") else "-",
                                                  "%.1f" % sq[0] if sq else "-"),
                    max(b for _, b in bpn) <= 4.0))
    if qry:
        sizes = list(qry)
        big, small = sizes[-1], sizes[0]
        Q, q1 = qry[big], qry[small]
        out.append(("top -k 20 with 8 tokens of context, in process, p99 (p50)",
                    " / ".join("%s (%s) at %s" % (fmt_ms(num(qry[t], "top_p99_ms")), fmt_ms(num(qry[t], "top_p50_ms")), human(t)) for t in sizes),
                    "p99 < 0.2 ms at 10M",
                    "SQLite, same result (index + context rows) %s (%s) at %s" % (
                        fmt_ms(num(q1, "sqlite_topctx_p99_ms")), fmt_ms(num(q1, "sqlite_topctx_p50_ms")), human(small)),
                    (num(Q, "top_p99_ms") or 9) < 0.2))
        t0s, sq = num(q1, "top0_p99_ms"), num(q1, "sqlite_top_p99_ms")
        out.append(("top -k 20, positions and values only, p99 (p50)",
                    " / ".join("%s (%s) at %s" % (fmt_ms(num(qry[t], "top0_p99_ms")), fmt_ms(num(qry[t], "top0_p50_ms")), human(t)) for t in sizes),
                    "faster than SQLite's index",
                    "SQLite index %s (%s) at %s; numpy CSC %s (%s)" % (
                        fmt_ms(sq), fmt_ms(num(q1, "sqlite_top_p50_ms")), human(small),
                        fmt_ms(num(npq, "numpy_top_p99_ms")), fmt_ms(num(npq, "numpy_top_p50_ms"))),
                    None if sq is None or t0s is None else
                    t0s < sq and num(q1, "top0_p50_ms") < num(q1, "sqlite_top_p50_ms")))
        out.append(("top as a CLI process (median of 21)", " / ".join("%s at %s" % (fmt_ms(num(qry[t], "cli_top_ms")), human(t)) for t in sizes),
                    "< 10 ms", "-", max(num(qry[t], "cli_top_ms") or 99 for t in sizes) < 10))
        out.append(("latent stats + histogram, in process, p99",
                    " / ".join("%s at %s" % (fmt_ms(num(qry[t], "latent_p99_ms")), human(t)) for t in sizes),
                    "< 1 ms", "SQLite %s at %s" % (fmt_ms(num(q1, "sqlite_latent_p99_ms")), human(small)),
                    max(num(qry[t], "latent_p99_ms") or 99 for t in sizes) < 1))
        out.append(("density of all 16384 latents, in process",
                    " / ".join("%s at %s" % (fmt_ms(num(qry[t], "density_ms")), human(t)) for t in sizes),
                    "< 5 ms", "SQLite GROUP BY %s; numpy %s after a %s load" % (
                        fmt_ms(num(q1, "sqlite_density_ms")), fmt_ms(num(npq, "numpy_density_ms")), fmt_ms(num(npq, "numpy_load_ms"))),
                    max(num(qry[t], "density_ms") or 99 for t in sizes) < 5))
        ok = all((num(qry[t], "cooc_ms") or 9e9) < (100 if t <= 1.1e6 else 1000 if t <= 11e6 else 9e9) for t in sizes)
        out.append(("cooc token scope, latent at ~%.1f%% density" % (100 * (num(q1, "cooc_density") or 0)),
                    " / ".join("%s at %s" % (fmt_ms(num(qry[t], "cooc_ms")), human(t)) for t in sizes),
                    "< 100 ms at 1M, < 1 s at 10M", "SQLite self-join %s; numpy rows %s" % (
                        fmt_ms(num(q1, "sqlite_cooc_ms")), fmt_ms(num(npq, "numpy_cooc_ms"))), ok))
        ok = all((num(qry[t], "search_ms") or 9e9) < (100 if t <= 1.1e6 else 1000) for t in sizes)
        out.append(("search, 2-token phrases at >= %.1f%% of positions (median)" % (100 * (num(q1, "search_share") or 0)),
                    " / ".join("%s (max %s) at %s" % (fmt_ms(num(qry[t], "search_ms")), fmt_ms(num(qry[t], "search_max_ms")), human(t)) for t in sizes),
                    "< 100 ms at 1M, < 1 s at 10M", "-", ok))
        out.append(("first query after opening (open + top)",
                    " / ".join("%s at %s" % (fmt_ms(num(qry[t], "first_top_ms")), human(t)) for t in sizes),
                    "< 20 ms at 10M", "numpy load + CSC %s at %s" % (fmt_ms(num(npq, "numpy_load_ms")), human(small)),
                    (num(Q, "first_top_ms") or 99) < 20))
    # storage against the entropy floor, and the whole folder against the indexes
    # (issue 22), at 262,144 latents (store stage) and 16,384 (the largest query DB)
    st = load(os.path.join(rdir, "store_262144.txt"))
    for d, lat in ((st, "262,144"), (qry[max(qry)] if qry else {}, "16,384")):
        idx, fl, nnz = num(d, "index_bytes"), num(d, "floor_bytes"), num(d, "nnz") or num(d, "floor_nnz")
        if not (idx and fl and nnz):
            continue
        out.append(("storage at %s latents, %s codes: both indexes against their entropy floor" % (lat, human(nnz)),
                    "%.0f MiB = %.2f bytes/code = %.3fx the floor" % (idx / 2**20, idx / nnz, idx / fl),
                    "<= 1.15x the floor",
                    "floor %.2f bytes/code (positions %s, ids %s, values %s bits)" % (
                        fl / nnz, d.get("floor_positions_bits", "?"), d.get("floor_ids_bits", "?"),
                        d.get("floor_values_bits", "?")),
                    idx <= 1.15 * fl))
        a, b = num(d, "import_folder_bytes"), num(d, "compact_folder_bytes")
        if a and b:
            free = (num(d, "import_free_pages") or 0) * 4096 / 2**20
            out.append(("storage at %s latents: the whole folder against both indexes" % lat,
                        "%.3fx after `compact` (%.0f MiB); %.3fx as imported (%.0f MiB, %.0f MiB of it free pages)" % (
                            b / idx, b / 2**20, a / idx, a / 2**20, free),
                        "<= 1.15x", "top lists %.0f MiB, summaries %.0f MiB, tokens %.0f MiB, token index %.0f MiB (compacted)" % tuple(
                            (num(d, "compact_pages_" + t) or 0) * 4096 / 2**20 for t in ("ltop", "lsum", "tok", "tokidx")),
                        b <= 1.15 * idx))
    if st.get("q_density_ms"):
        q = {k[2:]: v for k, v in st.items() if k.startswith("q_")}
        out.append(("queries at 262,144 latents, 10M tokens: density of all latents / top p99 / latent p99 / cooc / search / first query",
                    "%s / %s / %s / %s / %s / %s" % tuple(fmt_ms(num(q, k)) for k in (
                        "density_ms", "top_p99_ms", "latent_p99_ms", "cooc_ms", "search_ms", "first_top_ms")),
                    "< 20 ms / < 0.2 ms / < 1 ms / < 1 s / < 1 s / < 20 ms", "CLI top %s" % fmt_ms(num(q, "cli_top_ms")),
                    (num(q, "density_ms") or 99) < 20 and (num(q, "top_p99_ms") or 9) < 0.2 and
                    (num(q, "latent_p99_ms") or 9) < 1 and (num(q, "cooc_ms") or 9e9) < 1000 and
                    (num(q, "search_ms") or 9e9) < 1000 and (num(q, "first_top_ms") or 99) < 20))
    m = re.search(r"tokenizer load\s+([0-9.]+) s", text)
    e = re.search(r"tokenizer encode\s+([0-9.]+) MB/s", text)
    if m and e:
        out.append(("tokenizer: load / encode on one core", "%s s / %s MB/s" % (m.group(1), e.group(1)),
                    "< 1 s / >= 5 MB/s", "-", float(m.group(1)) < 1 and float(e.group(1)) >= 5))
    return mach, ing, qry, npe, out, text


def table(out):
    lines = ["| what | measured | target | peer (same run) | holds |", "| --- | --- | --- | --- | --- |"]
    for w, m, t, p, ok in out:
        lines.append("| %s | %s | %s | %s | %s |" % (w, m, t, p, "yes" if ok else "no" if ok is False else "-"))
    return "\n".join(lines)


def svg_lines(path, title, xlabel, ylabel, series, logy=False):
    """A small line chart: series = [(name, [(x, y), ...])]; x on a log scale."""
    W, H, L, R, T, B = 640, 360, 70, 170, 30, 50
    pts = [p for _, s in series for p in s if p[1] and p[1] > 0]
    if not pts:
        return
    xs = [math.log10(p[0]) for p in pts]
    ys = [math.log10(p[1]) if logy else p[1] for p in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = (math.floor(min(ys)), math.ceil(max(ys))) if logy else (0, max(ys) * 1.1)
    if x1 - x0 < 1e-9:
        x0, x1 = x0 - 0.5, x1 + 0.5
    if y1 - y0 < 1e-9:
        y1 = y0 + 1

    def X(x):
        return L + (math.log10(x) - x0) / (x1 - x0) * (W - L - R)

    def Y(y):
        v = math.log10(y) if logy else y
        return H - B - (v - y0) / (y1 - y0) * (H - T - B)
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">' % (W, H),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="18" font-size="14">%s</text>' % (L, html.escape(title)),
         '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (L, H - B, W - R, H - B),
         '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (L, T, L, H - B),
         '<text x="%d" y="%d" text-anchor="middle">%s</text>' % ((L + W - R) / 2, H - 12, html.escape(xlabel)),
         '<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">%s</text>' % ((T + H - B) / 2, (T + H - B) / 2, html.escape(ylabel))]
    for x in sorted({p[0] for p in pts}):
        o.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (X(x), H - B + 16, human(x)))
    ticks = [10 ** e for e in range(int(y0), int(y1) + 1)] if logy else [y0 + (y1 - y0) * i / 5 for i in range(6)]
    for t in ticks:
        lab = ("%g" % t) if logy else ("%.3g" % t)
        o.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (L, Y(t), W - R, Y(t)))
        o.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (L - 4, Y(t) + 4, lab))
    for i, (name, s) in enumerate(series):
        s = [p for p in s if p[1] and p[1] > 0]
        if not s:
            continue
        c = colors[i % len(colors)]
        o.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (
            c, " ".join("%.1f,%.1f" % (X(x), Y(y)) for x, y in s)))
        for x, y in s:
            o.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (X(x), Y(y), c))
        o.append('<text x="%d" y="%d" fill="%s">%s</text>' % (W - R + 10, T + 16 * i + 10, c, html.escape(name)))
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def plots(svgdir, ing, qry):
    os.makedirs(svgdir, exist_ok=True)
    tps = [(t, int(d["tokens"]) / float(d["ingest_s"])) for t, d in ing.items() if "ingest_s" in d]
    ceil = [(t, num(d, "ceiling_tps")) for t, d in ing.items()]
    svg_lines(os.path.join(svgdir, "ingest.svg"), "Ingest throughput, 640 -> 16384 JumpReLU",
              "tokens ingested", "tokens/s", [("ingest", tps), ("sgemm ceiling", ceil)])
    svg_lines(os.path.join(svgdir, "storage.svg"), "Storage, both indexes, bf16 values",
              "tokens in the DB", "bytes per code",
              [("ingest (encoded)", [(t, num(d, "bytes_per_nnz")) for t, d in ing.items()]),
               ("import (planted codes)", [(t, num(d, "bytes_per_nnz")) for t, d in qry.items()])])
    keys = [("top p99", "top_p99_ms"), ("latent p99", "latent_p99_ms"), ("density", "density_ms"),
            ("cooc ~1%", "cooc_ms"), ("search >=0.5%", "search_ms"), ("first query", "first_top_ms")]
    svg_lines(os.path.join(svgdir, "queries.svg"), "Query latency vs corpus size (in process)",
              "tokens in the DB", "milliseconds (log)",
              [(n, [(t, num(d, k)) for t, d in qry.items()]) for n, k in keys], logy=True)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rdir = sys.argv[1]
    mach, ing, qry, npe, out, text = rows(rdir)
    desc = "%s (family %s), %s cores, OpenBLAS core %s, %s threads; AVX-512 %s, AVX512_BF16 %s" % (
        mach.get("cpu_model", "?"), mach.get("cpu_family", "?"), mach.get("cores", "?"),
        next(iter(ing.values()), {}).get("openblas_core", "?"), next(iter(ing.values()), {}).get("threads", "?"),
        "yes" if mach.get("avx512f") == "1" else "no", "yes" if mach.get("avx512_bf16") == "1" else "no")
    if "env_coretype" in mach:
        desc += " (OPENBLAS_CORETYPE=%s in the environment, unset for the run; numpy on the same core)" % (
            mach["env_coretype"])
    t = table(out)
    print("machine: " + desc)
    print(t)
    if "bench_s" in mach:
        print("make bench took %.0f s" % float(mach["bench_s"]))
    if len(sys.argv) >= 4:
        md, svgdir = sys.argv[2], sys.argv[3]
        plots(svgdir, ing, qry)
        body = ["Measured %s at commit %s on %s. Whole run: %s." % (
            mach.get("date", "?"), mach.get("commit", "?"), desc,
            "%.0f s" % float(mach["bench_s"]) if "bench_s" in mach else "?"), "", t, "",
            "![ingest](bench/ingest.svg) ![storage](bench/storage.svg)", "",
            "![queries](bench/queries.svg)"]
        s = open(md).read() if os.path.exists(md) else "<!-- results:begin -->\n<!-- results:end -->\n"
        a, b = s.find("<!-- results:begin -->"), s.find("<!-- results:end -->")
        if a < 0 or b < a:
            s += "\n<!-- results:begin -->\n<!-- results:end -->\n"
            a, b = s.find("<!-- results:begin -->"), s.find("<!-- results:end -->")
        s = s[:a] + "<!-- results:begin -->\n" + "\n".join(body) + "\n" + s[b:]
        with open(md, "w") as f:
            f.write(s)
        print("wrote %s and %s/*.svg" % (md, svgdir))


if __name__ == "__main__":
    main()
