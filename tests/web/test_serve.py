"""`latentdb serve` over real HTTP: every API body is byte for byte what the CLI
prints with --json; errors are JSON with 400 or 404; malformed, huge and trickling
requests leave the server answering; an ingest's commits show without a restart;
SIGTERM stops it cleanly; `latentdb page` writes a self-contained file; corpus text
holding markup is escaped everywhere."""
import html.parser
import json
import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import CLI, Server, cli


def get(url, timeout=30):
    """(status, content type, body bytes) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


# (API path with query, the same CLI command after the DB's place "-")
SAME = [
    ("info", "info -"),
    ("dicts", "dict ls -"),
    ("top/res/{the}", "top - res {the}"),
    ("top/res/{the}?k=5&context=3&distinct_seq=1", "top - res {the} -k 5 --context 3 --distinct-seq"),
    ("top/res/{the}?include_special=true&k=30", "top - res {the} --include-special -k 30"),
    ("top/res/{the}?positions_only=1", "top - res {the} --positions-only"),
    ("latent/res/{the}", "latent - res {the}"),
    ("latent/res/{the}?bins=7", "latent - res {the} --bins 7"),
    ("density/res", "density - res"),
    ("density/res?bins=9&counts=1", "density - res --bins 9 --counts"),
    ("cooc/res/{the}", "cooc - res {the}"),
    ("cooc/res/{the}?scope=window:3&k=7&sort=npmi", "cooc - res {the} --scope window:3 -k 7 --sort npmi"),
    ("cooc/res/{the}?scope=seq&with=res", "cooc - res {the} --scope seq --with res"),
    ("samples/res/{the}", "samples - res {the}"),
    ("samples/res/{the}?by=value&groups=3&per_group=2&seed=5&context=4",
     "samples - res {the} --by value --groups 3 --per-group 2 --seed 5 --context 4"),
    ("search/res?text=%20the", "search - res ' the'"),
    ("search/res?text=%20of%20the&k=5&where=all", "search - res ' of the' -k 5 --where all"),
    ("seq/3", "seq - 3"),
    ("seq/7?dict=res&k=2", "seq - 7 --dict res -k 2"),
]


def the_latent(demo):
    for l in json.load(open(os.path.join(os.path.dirname(demo), "planted.json")))["latents"]:
        if l["family"] == "token" and l.get("probe") == " the":
            return l["latent"]
    raise AssertionError("no planted ' the' latent")


@pytest.mark.parametrize("path,cmd", SAME)
def test_api_is_the_cli_json(server, demo_db, path, cmd):
    the = the_latent(demo_db)
    args = [a.replace("{the}", str(the)) for a in shlex.split(cmd)]
    args = [demo_db if a == "-" else a for a in args]
    want = subprocess.run([CLI, *args, "--json"], capture_output=True, check=True).stdout
    st, ctype, body = get(server.url + "api/" + path.replace("{the}", str(the)))
    assert st == 200 and ctype.startswith("application/json")
    assert body == want, f"{path}: {body[:200]!r} != {want[:200]!r}"


@pytest.mark.parametrize("path,status,msg", [
    ("api/top/res/abc", 400, "LATENT must be"),
    ("api/top/res/99999999", 404, "out of range"),
    ("api/top/nodict/1", 404, "nodict"),
    ("api/top/res/1?k=0", 400, "k takes 1..100000"),
    ("api/top/res/1?k=1000001", 400, "k takes"),
    ("api/top/res/1?context=x", 400, "context takes"),
    ("api/top/res/1?bogus=1", 400, "unknown parameter 'bogus'"),
    ("api/top/res/1?distinct_seq=maybe", 400, "distinct_seq takes"),
    ("api/latent/res/1?bins=0", 400, "bins takes"),
    ("api/cooc/res/1?scope=sentence", 400, "scope takes"),
    ("api/cooc/res/1?sort=x", 400, "sort takes"),
    ("api/samples/res/1?by=x", 400, "by takes"),
    ("api/search/res", 400, "search needs text"),
    ("api/search/res?text=" + "a" * 1001, 400, "longer than 1000 bytes"),
    ("api/seq/abc", 400, "a sequence is a number"),
    ("api/seq/99999999", 404, "no sequence"),
    ("api/nothing", 404, "no such API path"),
    ("api/top/res", 404, "no such API path"),
    ("api/top/res/1/2/3", 404, "no such path"),
    ("api/", 404, "no such API path"),
])
def test_api_errors(server, path, status, msg):
    st, ctype, body = get(server.url + path)
    assert st == status, (path, st, body[:200])
    assert ctype.startswith("application/json")
    err = json.loads(body)["error"]
    assert msg in err, (path, err)


@pytest.mark.parametrize("path,status", [
    ("", 200), ("latent/res/5", 200), ("search", 200), ("search?text=%20the", 200),
    ("seq/3", 200), ("seq/3?dict=res&latent=5", 200), ("assets/style.css", 200),
    ("assets/page.js", 200), ("nothing", 404), ("latent/res/abc", 400),
    ("latent/res/99999999", 404), ("latent/zz/1", 404), ("seq/99999999", 404),
    ("seq/3?latent=5", 400), ("assets/../../etc/passwd", 404), ("assets/", 404),
    ("%2e%2e/%2e%2e/etc/passwd", 404), ("latent/res/5?x=1", 400),
    ("latent/res/5?scope=window:5", 200), ("latent/res/5?scope=seq", 200),
    ("latent/res/5?scope=sentence", 400),
])
def test_pages_status(server, path, status):
    st, ctype, body = get(server.url + path)
    assert st == status, (path, st, body[:300])
    if not path.startswith("assets/") or st != 200:
        assert ctype.startswith("text/html")
        assert b"root:" not in body


def raw(server, data, read=True, timeout=10):
    """Sends raw bytes; the response's first line (b"" when the server closed)."""
    s = socket.create_connection((server.host, server.port), timeout=timeout)
    try:
        s.sendall(data)
        if not read:
            return b""
        out = b""
        while b"\r\n" not in out:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
        return out.split(b"\r\n")[0]
    finally:
        s.close()


def test_malformed_requests(server):
    first = raw(server, b"GARBAGE\r\n\r\n")
    assert first == b"" or first.split()[1] == b"400", first
    assert raw(server, b"GET /api/top/res/%FF%FE HTTP/1.1\r\nHost: x\r\n\r\n").split()[1] in (b"400", b"404")
    assert raw(server, b"GET /api/search/res?text=%C3%28 HTTP/1.1\r\nHost: x\r\n\r\n").split()[1] in (b"200", b"400")
    assert raw(server, b"POST /api/info HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc").split()[1] == b"405"
    huge = b"GET /api/info?" + b"a=b&" * 30000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    first = raw(server, huge)
    assert first == b"" or first.split()[1] in (b"400", b"414", b"431"), first
    many = b"GET / HTTP/1.1\r\n" + b"X-A: " + b"b" * 100 + b"\r\n" * 1 + b"X-B: c\r\n" * 3000 + b"\r\n"
    first = raw(server, many)
    assert first == b"" or first.split()[1] in (b"400", b"413", b"431"), first
    st, _, _ = get(server.url + "api/info")
    assert st == 200, "the server answers after malformed requests"


def test_a_trickling_client_is_cut_off(server):
    """A client sending a byte every half second never trips an idle timeout; the
    server closes it once its headers have taken 5 s, and answers others meanwhile."""
    s = socket.create_connection((server.host, server.port), timeout=20)
    t0 = time.monotonic()
    closed_after = None
    try:
        s.sendall(b"GET /api/info HTTP/1.1\r\nHost: x\r\n")
        i = 0
        while time.monotonic() - t0 < 15:
            try:
                s.sendall(b"X-Slow-%d: y\r\n" % i)
            except OSError:
                closed_after = time.monotonic() - t0
                break
            i += 1
            s.settimeout(0.5)
            try:
                if s.recv(1) == b"":
                    closed_after = time.monotonic() - t0
                    break
            except socket.timeout:
                pass
            if i == 3:
                st, _, _ = get(server.url + "api/info")
                assert st == 200, "others are answered while a client trickles"
    finally:
        s.close()
    assert closed_after is not None and closed_after < 9, closed_after


def test_many_clients_at_once(server, demo_db):
    import concurrent.futures
    the = the_latent(demo_db)
    urls = [server.url + f"api/top/res/{the}", server.url + f"latent/res/{the}",
            server.url + "api/info"] * 20
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        got = list(ex.map(lambda u: get(u)[0], urls))
    assert got == [200] * len(urls)


def test_sees_an_ingest_without_restart(tmp_path, store_fixture):
    db = str(tmp_path / "db")
    cli("init", db, "--skip-tokens", "0,1")
    cli("dict", "add", db, "res", os.path.join(store_fixture, "dict"))
    with Server(db) as srv:
        st, _, body = get(srv.url + "api/info")
        assert st == 200 and json.loads(body)["n_seq"] == 0
        cli("ingest", db, "--dict", "res", "--tokens", os.path.join(store_fixture, "tokens.npy"),
            "--acts", os.path.join(store_fixture, "acts.npy"))
        st, _, body = get(srv.url + "api/info")
        assert st == 200 and json.loads(body)["n_seq"] == 400
        st, _, body = get(srv.url + "api/latent/res/5")
        assert st == 200 and json.loads(body)["count"] > 0


def test_sigterm_stops_cleanly(demo_db):
    srv = Server(demo_db).start()
    assert get(srv.url + "api/info")[0] == 200
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=10) == 0
    assert "stopping (SIGTERM)" in srv.proc.stderr.read().decode()


def test_serve_usage_errors(demo_db, tmp_path):
    for args, msg in [(["--port", "70000"], "--port takes"), (["--threads", "0"], "--threads takes"),
                      (["--bogus"], "unknown option"), ([], "serve needs a DB")]:
        p = subprocess.run([CLI, "serve", *([demo_db] if args and args[0] != "--bogus" else []), *args],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 2 and msg in p.stderr, (args, p.stderr)
    p = subprocess.run([CLI, "serve", str(tmp_path / "none"), "--port", "0"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 1 and "latentdb:" in p.stderr
    p = subprocess.run([CLI, "serve", demo_db, "--host", "no.such.host.invalid", "--port", "0"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "--host" in p.stderr


def test_page_command(demo_db, tmp_path):
    the = the_latent(demo_db)
    out = tmp_path / "p.html"
    p = subprocess.run([CLI, "page", demo_db, "res", str(the), "-o", str(out)], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    html = out.read_text()
    assert "<script" not in html and "href=\"/assets" not in html and "<style>" in html
    top = json.loads(cli("top", demo_db, "res", str(the), "--json"))
    assert f'data-v="{top["examples"][0]["value"]:.9g}"' in html
    p = subprocess.run([CLI, "page", demo_db, "res", "99999999", "-o", str(tmp_path / "q.html")],
                       capture_output=True, text=True)
    assert p.returncode == 1 and not (tmp_path / "q.html").exists()


class Tags(html.parser.HTMLParser):
    """The script, b and img elements of a page, with their src."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "b", "img"):
            self.found.append((tag, dict(attrs).get("src")))


def test_markup_in_the_corpus_is_escaped(markup_db):
    db, latent = markup_db
    with Server(db) as srv:
        for path in ["", f"latent/res/{latent}", "seq/0?dict=res&latent=%d" % latent, "search?text=%3Cscript",
                     f"api/top/res/{latent}"]:
            st, ctype, body = get(srv.url + path)
            assert st == 200, (path, body[:300])
            text = body.decode()
            if ctype.startswith("text/html"):
                tags = Tags()
                tags.feed(text)
                # the corpus's <script>, <b> and <img> must be text, never elements
                assert tags.found == [("script", "/assets/page.js")], (path, tags.found)
                if path.startswith(("latent/", "seq/")):
                    assert "&lt;script&gt;" in text or "&lt;" in text, path


@pytest.mark.parametrize("cmd", [["density", "res", "--bins", "17"], ["latent", "res", "THE", "--bins", "13"]])
def test_svg_files(demo_db, tmp_path, cmd):
    """--svg writes the pages' histogram as a well-formed SVG file: one bar per bin of
    the --json answer, each titled with its count."""
    import xml.dom.minidom
    the = str(the_latent(demo_db))
    args = [a.replace("THE", the) for a in cmd]
    out = tmp_path / "h.svg"
    j = json.loads(cli(args[0], demo_db, *args[1:], "--json", "--svg", out))
    bins = j["bins"] if "bins" in j else j["hist"]
    doc = xml.dom.minidom.parse(str(out))
    titles = [t.firstChild.data for t in doc.getElementsByTagName("title")]
    assert len(titles) == len(bins)
    assert [int(t.rsplit(": ", 1)[1]) for t in titles] == [b["count"] for b in bins]
    p = subprocess.run([CLI, args[0], demo_db, *args[1:], "--svg", str(tmp_path / "no" / "x.svg")],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "cannot write" in p.stderr


def test_keep_alive(server):
    """Requests on one connection are answered one after another: a response queued
    with the headers alone would close the connection after it."""
    import re as _re
    s = socket.create_connection((server.host, server.port), timeout=10)
    try:
        for i in range(5):
            s.sendall(b"GET /api/info HTTP/1.1\r\nHost: x\r\n\r\n")
            buf = b""
            while b"\r\n\r\n" not in buf:
                c = s.recv(65536)
                assert c, f"the server closed the connection after {i} answers"
                buf += c
            head, body = buf.split(b"\r\n\r\n", 1)
            assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower()
            n = int(_re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            while len(body) < n:
                body += s.recv(65536)
            assert json.loads(body)["n_seq"] > 0
    finally:
        s.close()


def test_overview_most_frequent(server, demo_db):
    """The overview starts from the dictionary's most frequent latents, in order."""
    counts = json.loads(cli("density", demo_db, "res", "--counts", "--json"))["counts"]
    want = sorted(range(len(counts)), key=lambda j: (-counts[j], j))[:8]
    st, _, body = get(server.url)
    import re as _re
    part = body.decode().split("Most frequent: ", 1)[1].split("</p>", 1)[0]
    got = [int(x) for x in _re.findall(r'href="/latent/res/(\d+)"', part)]
    assert st == 200 and got == want, (got, want)
