"""`latentdb serve` and the page's queries (make bench, stage "web"): prints `key value`
lines for report.py.

  cooc of the latent whose count is closest to 9,099 (the issue's example), token,
      window:5 and seq scope, and samples: the best of 3 CLI runs each, at each DB
      given (the 1.5M-token demo DB and the 10M-token query DB);
  load: 50 clients with keep-alive connections for 10 s against /api/top/DICT/L and
      the latent's page /latent/DICT/L, then 3 s against each other endpoint:
      requests, errors, p50 and p99, and the server's anonymous memory (RssAnon)
      before, after each of the two, and at the end (VmRSS beside it).

usage: web_bench.py CLI DEMO_DB DICT QUERY_DB QDICT
"""
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time


def run_s(cmd):
    best = None
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        d = time.perf_counter() - t
        best = d if best is None else min(best, d)
    return best


def pick(cli, db, d, want=9099):
    counts = json.loads(subprocess.run([cli, "density", db, d, "--counts", "--json"], check=True,
                                       capture_output=True).stdout)["counts"]
    return min(range(len(counts)), key=lambda i: abs(counts[i] - want)), counts


def rss_kib(pid, field="RssAnon:"):
    """The server's heap and stacks (RssAnon): the mapped DB's pages that answers touch
    are file pages (RssFile), which the kernel reclaims, and are not its memory."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def client(host, port, path, until, lat, errs):
    """One keep-alive connection sending GET path until `until`; latencies in lat."""
    req = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    s = None
    while time.perf_counter() < until:
        try:
            if s is None:
                s = socket.create_connection((host, port), timeout=10)
            t = time.perf_counter()
            s.sendall(req)
            buf = b""
            while b"\r\n\r\n" not in buf:
                c = s.recv(65536)
                if not c:
                    raise OSError("closed")
                buf += c
            head, body = buf.split(b"\r\n\r\n", 1)
            status = int(head.split()[1])
            n = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            while len(body) < n:
                c = s.recv(65536)
                if not c:
                    raise OSError("closed")
                body += c
            lat.append(time.perf_counter() - t)
            if status != 200:
                errs.append(status)
        except (OSError, ValueError, AttributeError) as e:
            errs.append(str(e))
            if s:
                s.close()
            s = None
    if s:
        s.close()


def load(host, port, path, clients, seconds):
    lat, errs = [], []
    until = time.perf_counter() + seconds
    ts = [threading.Thread(target=client, args=(host, port, path, until, lat, errs))
          for _ in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    lat.sort()
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] * 1000 if lat else float("nan")
    return len(lat), len(errs), q(0.5), q(0.99)


def main():
    cli, demo, d, qdb, qd = sys.argv[1:6]
    for tag, db, dd in (("demo", demo, d), ("q10m", qdb, qd)):
        if not os.path.exists(os.path.join(db, "data.mdb")):
            continue
        lat, counts = pick(cli, db, dd)
        print(f"{tag}_tokens {json.loads(subprocess.run([cli, 'info', db, '--json'], check=True, capture_output=True).stdout)['n_tokens']}")
        print(f"{tag}_latent {lat}")
        print(f"{tag}_latent_count {counts[lat]}")
        for sc in ("token", "window:5", "seq"):
            print(f"{tag}_cooc_{sc.replace(':', '')}_s {run_s([cli, 'cooc', db, dd, str(lat), '--scope', sc, '--json']):.4f}")
        print(f"{tag}_samples_s {run_s([cli, 'samples', db, dd, str(lat), '--json']):.4f}")
        print(f"{tag}_info_s {run_s([cli, 'info', db, '--json']):.4f}")  # the CLI's own start
    lat, _ = pick(cli, demo, d)
    p = subprocess.Popen([cli, "serve", demo, "--port", "0"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    m = re.search(r"http://([^:/]+):(\d+)/", p.stdout.readline().decode())
    host, port = m.group(1), int(m.group(2))
    try:
        rss0 = rss_kib(p.pid)
        for name, path, secs in (("top", f"/api/top/{d}/{lat}", 10), ("page", f"/latent/{d}/{lat}", 10)):
            n, e, p50, p99 = load(host, port, path, 50, secs)
            print(f"load_{name}_requests {n}\nload_{name}_errors {e}\nload_{name}_p50_ms {p50:.2f}\n"
                  f"load_{name}_p99_ms {p99:.2f}\nload_{name}_rss_kib {rss_kib(p.pid)}")
        for name, path in (("info", "/api/info"), ("latent", f"/api/latent/{d}/{lat}"),
                           ("density", f"/api/density/{d}"), ("cooc", f"/api/cooc/{d}/{lat}"),
                           ("samples", f"/api/samples/{d}/{lat}"),
                           ("search", f"/api/search/{d}?text=%20the"), ("seq", "/api/seq/3"),
                           ("overview", "/"), ("searchpage", "/search?text=%20the"),
                           ("part_samples", f"/part/samples/{d}/{lat}?by=count"),
                           ("part_cooc", f"/part/cooc/{d}/{lat}?scope=token"),
                           ("part_cooc_w5", f"/part/cooc/{d}/{lat}?scope=window:5")):
            n, e, p50, p99 = load(host, port, path, 50, 3)
            print(f"load_{name}_requests {n}\nload_{name}_errors {e}\nload_{name}_p99_ms {p99:.2f}")
        print(f"load_rss0_kib {rss0}\nload_rss1_kib {rss_kib(p.pid)}\n"
              f"load_vmrss_kib {rss_kib(p.pid, 'VmRSS:')}")
    finally:
        p.terminate()
        p.wait(timeout=10)


if __name__ == "__main__":
    main()
