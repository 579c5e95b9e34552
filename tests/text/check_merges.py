"""The compiled merge table against tokenizer.json, computed independently here:
every merge (a, b) of the JSON is in the table once, with the merged piece's id and
the rank of its last occurrence, and the table holds nothing else.
usage: helper_tokenize TOKENIZER_JSON --merges | python3 check_merges.py TOKENIZER_JSON"""
import json
import sys

tj = json.load(open(sys.argv[1], encoding="utf-8"))
ids = dict(tj["model"]["vocab"])
for t in tj.get("added_tokens") or []:
    ids[t["content"]] = t["id"]
want = {}
for rank, m in enumerate(tj["model"]["merges"]):
    a, b = m.split(" ", 1) if isinstance(m, str) else m
    want[(ids[a], ids[b])] = (rank, ids[a + b])
got = {}
for line in sys.stdin:
    a, b, rank, merged = map(int, line.split())
    if (a, b) in got:
        sys.exit(f"merge ({a}, {b}) is in the table twice")
    got[(a, b)] = (rank, merged)
bad = [(k, want.get(k), got.get(k)) for k in want.keys() | got.keys() if want.get(k) != got.get(k)]
if bad:
    sys.exit(f"{len(bad)} merges differ from the JSON (pair, expected, compiled), e.g. {sorted(bad)[:3]}")
print(f"{len(got)} merges, each with the rank and merged id the JSON gives")
