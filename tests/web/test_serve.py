"""`latentdb serve` over real HTTP: every API body is byte for byte what the CLI
prints with --json; errors are JSON with 400 or 404; malformed, huge and trickling
requests leave the server answering; an ingest's commits show without a restart;
SIGTERM stops it cleanly; `latentdb page` writes a self-contained file; corpus text
holding markup is escaped everywhere. A latent's page holds its costly sections
(samples, co-occurrence) as placeholders whose fragments (/part/...) are the markup
the whole page (?full=1) has there."""
import html
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
    ("latent/res/5?full=1", 200), ("latent/res/5?full=true&scope=seq", 200),
    ("latent/res/5?full=0", 200), ("latent/res/5?full=2", 400),
    ("latent/res/5?full=1&scope=window:x", 400), ("latent/res/99999999?full=1", 404),
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
            server.url + "api/info", server.url + f"part/samples/res/{the}?by=count",
            server.url + f"part/cooc/res/{the}?scope=token"] * 12
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
    # complete without a server: every section inline, no placeholder, no link to a scope
    assert "data-part" not in html and "<noscript" not in html and "nav class=scope" not in html
    for part in ("samples", "samples_value"):
        assert 'class=ex ' in section(html, part), part
    assert "id=cooc" in section(html, "co_part") and "/latent/res/" in section(html, "co_part")
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
        for path in ["", f"latent/res/{latent}", f"latent/res/{latent}?full=1",
                     "seq/0?dict=res&latent=%d" % latent, "search?text=%3Cscript",
                     f"api/top/res/{latent}", f"part/samples/res/{latent}?by=count",
                     f"part/samples/res/{latent}?by=value", f"part/cooc/res/{latent}?scope=seq"]:
            st, ctype, body = get(srv.url + path)
            assert st == 200, (path, body[:300])
            text = body.decode()
            if ctype.startswith("text/html"):
                tags = Tags()
                tags.feed(text)
                # the corpus's <script>, <b> and <img> must be text, never elements
                want = [] if path.startswith("part/") else [("script", "/assets/page.js")]
                assert tags.found == want, (path, tags.found)
                if path.startswith(("latent/", "seq/", "part/samples/")):
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


def section(page, id_):
    """The markup inside the div whose id is id_ (up to its own closing tag): the
    pages' markup is the server's, and stored text in it is escaped, so counting
    <div and </div> finds the end."""
    import re as _re
    m = _re.search(r"<div id=%s[ >]" % _re.escape(id_), page)
    assert m, f"no div id={id_}"
    start = page.index(">", m.start()) + 1
    depth = 1
    for t in _re.finditer(r"<div[ >]|</div>", page[start:]):
        depth += 1 if t.group(0) != "</div>" else -1
        if not depth:
            return page[start:start + t.start()]
    raise AssertionError(f"div id={id_} is not closed")


PARTS = [("samples", "part/samples/res/{l}?by=count"), ("samples_value", "part/samples/res/{l}?by=value"),
         ("co_part", "part/cooc/res/{l}?scope={scope}")]


@pytest.mark.parametrize("scope", [None, "token", "window:5", "seq"])
def test_parts_are_the_whole_pages_sections(server, demo_db, scope):
    """Each placeholder names its fragment, and the fragment is byte for byte what
    the whole page (?full=1) has in that section; the rest of the two pages is the
    same."""
    import re as _re
    the = the_latent(demo_db)
    q = f"?scope={scope}" if scope else ""
    st, _, lazy = get(server.url + f"latent/res/{the}{q}")
    st2, _, full = get(server.url + f"latent/res/{the}{q}{'&' if q else '?'}full=1")
    assert st == 200 and st2 == 200
    lazy, full = lazy.decode(), full.decode()
    rest_lazy, rest_full = lazy, full
    for id_, url in PARTS:
        url = "/" + url.format(l=the, scope=urllib.parse.quote(scope or "token", safe=""))
        ph = section(lazy, id_)
        # the placeholder: its fragment's URL, and without script a link to the whole page
        m = _re.search(r'<div id=%s class=part data-part="([^"]+)">' % id_, lazy)
        assert m and m.group(1) == url, (id_, m and m.group(1), url)
        assert "class=ex" not in ph and "id=cooc" not in ph
        anchor = "co" if id_ == "co_part" else id_
        assert ph.startswith("<noscript>") and f'?full=1{"&amp;scope=" + urllib.parse.quote(scope, safe="") if scope else ""}#{anchor}"' in ph, ph
        st, ctype, frag = get(server.url + url[1:])
        assert st == 200 and ctype.startswith("text/html"), (url, st)
        frag = frag.decode()
        want = section(full, id_)
        assert frag == want, (id_, frag[:300], want[:300])
        assert ("class=ex " in frag) if id_ != "co_part" else ('id=cooc' in frag and frag.count("<tr>") > 1)
        rest_lazy = rest_lazy.replace(ph, "").replace(f' data-part="{url}"', "")
        rest_full = rest_full.replace(want, "")
    assert rest_lazy == rest_full
    # the cheap sections are inline in both
    for id_ in ("top", "count", "density", "latent"):
        assert f"id={id_}>" in rest_lazy, id_
    assert rest_lazy.count("<svg") == 2


def test_cooc_part_scope_links(server, demo_db):
    """The co-occurrence fragment marks its scope; each scope link goes to the whole
    page at that scope (it works without script) and names its own fragment."""
    import re as _re
    the = the_latent(demo_db)
    st, _, frag = get(server.url + f"part/cooc/res/{the}?scope=window:20")
    links = _re.findall(r'<a class="(on|)" href="([^"]+)" data-part="([^"]+)">([^<]+)</a>', frag.decode())
    assert st == 200 and [l[3] for l in links] == ["token", "window:5", "window:20", "seq"], links
    assert [l[0] for l in links] == ["", "", "on", ""]
    for on, href, part, name in links:
        assert href == f"/latent/res/{the}?scope={name}&amp;full=1#co"
        assert part == f"/part/cooc/res/{the}?scope={name}"
        st, _, page = get(server.url + href.replace("&amp;", "&")[1:])
        assert st == 200 and section(page.decode(), "co_part") == get(server.url + part[1:])[2].decode()
    st, _, frag = get(server.url + f"part/cooc/res/{the}?scope=window:7")
    assert st == 200 and "Within 7 positions" in frag.decode() and 'class="on"' not in frag.decode()


@pytest.mark.parametrize("path,status,msg", [
    ("part/samples/res/1", 400, "needs by"),
    ("part/samples/res/1?by=x", 400, "by takes count or value"),
    ("part/samples/res/1?by=" + "c" * 41, 400, "by is longer than 40 bytes"),
    ("part/samples/res/1?by=count&k=3", 400, "unknown parameter"),
    ("part/samples/res/abc?by=count", 400, "LATENT must be"),
    ("part/samples/res/99999999?by=value", 404, "out of range"),
    ("part/samples/nodict/1?by=count", 404, "nodict"),
    ("part/cooc/res/1", 400, "needs scope"),
    ("part/cooc/res/1?scope=sentence", 400, "scope takes"),
    ("part/cooc/res/1?scope=window:100001", 400, "scope takes"),
    ("part/cooc/res/1?scope=seq&sort=npmi", 400, "unknown parameter"),
    ("part/cooc/res/abc?scope=seq", 400, "LATENT must be"),
    ("part/cooc/res/99999999?scope=token", 404, "out of range"),
    ("part/cooc/nodict/1?scope=token", 404, "nodict"),
    ("part/samples/res", 404, "no such part"),
    ("part/cooc", 404, "no such part"),
    ("part/top/res/1", 404, "no such part"),
    ("part/", 404, "no such part"),
    ("part/samples/res/1/2", 404, "no such part"),
])
def test_part_errors(server, path, status, msg):
    """A fragment's bad or missing dictionary, latent, by or scope: the page's and the
    API's statuses and messages, as an escaped paragraph the page shows in place."""
    st, ctype, body = get(server.url + path)
    assert st == status, (path, st, body[:200])
    assert ctype.startswith("text/html")
    text = body.decode()
    assert text.startswith('<p class="muted error">%d: ' % status) and "<html" not in text, text
    assert msg in html.unescape(text), (path, text)


def test_part_of_a_dead_latent(server, demo_db):
    """A latent that never fires: its page has no costly sections, and its fragments
    say it never fires."""
    counts = json.loads(cli("density", demo_db, "res", "--counts", "--json"))["counts"]
    dead = counts.index(0)
    st, _, page = get(server.url + f"latent/res/{dead}")
    assert st == 200 and b"data-part" not in page and b"dead: it never fires" in page
    st, _, frag = get(server.url + f"part/samples/res/{dead}?by=count")
    assert st == 200 and b"(it never fires)" in frag
    st, _, frag = get(server.url + f"part/cooc/res/{dead}?scope=seq")
    assert st == 200 and frag.count(b"<tr>") == 1
