// ref_tokenize.mjs — the reference: token ids from the pure-JS Hugging Face
// tokenizer (@huggingface/tokenizers), for tests/text.sh to compare with latentdb's.
// usage: node ref_tokenize.mjs PKGDIR TOKENIZER_JSON (--files F... | --strings S.json)... [--decode | --both]
// prints one JSON array of ids per input, one a line (no BOS); with --decode, the decode of
// those ids instead, as a JSON string (no clean-up of spaces: latentdb shows text as written);
// with --both, the ids' line then the decode's.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { join, dirname } from "node:path";

const [pkg, tpath, ...args] = process.argv.slice(2);
const last = args[args.length - 1];
const decode = last === "--decode" || last === "--both", both = last === "--both";
const rest = decode ? args.slice(0, -1) : args;
const { Tokenizer } = await import(pathToFileURL(join(pkg, "dist/tokenizers.mjs")).href);
const json = JSON.parse(readFileSync(tpath, "utf8"));
let config = {};
try { config = JSON.parse(readFileSync(join(dirname(tpath), "tokenizer_config.json"), "utf8")); } catch {}
const tok = new Tokenizer(json, config);
const dec = new TextDecoder(); // WHATWG: invalid UTF-8 -> U+FFFD
const inputs = [];
let files = false;
for (const a of rest) {
  if (a === "--files" || a === "--strings") files = a === "--files";
  else if (files) inputs.push(dec.decode(readFileSync(a)));
  else inputs.push(...JSON.parse(readFileSync(a, "utf8")));
}
const out = [];
for (const s of inputs) {
  const ids = tok.encode(s, { add_special_tokens: false }).ids;
  if (both) out.push(JSON.stringify(ids));
  out.push(JSON.stringify(!decode ? ids
    : ids.length ? tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }) : ""));
}
process.stdout.write(out.join("\n") + "\n");
