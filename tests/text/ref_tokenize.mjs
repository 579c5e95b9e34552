// ref_tokenize.mjs — the reference: token ids from the pure-JS Hugging Face
// tokenizer (@huggingface/tokenizers), for tests/text.sh to compare with latentdb's.
// usage: node ref_tokenize.mjs PKGDIR TOKENIZER_JSON (--files F... | --strings S.json)
// prints one JSON array of ids per input, one a line (no BOS).
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { join, dirname } from "node:path";

const [pkg, tpath, mode, ...rest] = process.argv.slice(2);
const { Tokenizer } = await import(pathToFileURL(join(pkg, "dist/tokenizers.mjs")).href);
const json = JSON.parse(readFileSync(tpath, "utf8"));
let config = {};
try { config = JSON.parse(readFileSync(join(dirname(tpath), "tokenizer_config.json"), "utf8")); } catch {}
const tok = new Tokenizer(json, config);
const dec = new TextDecoder(); // WHATWG: invalid UTF-8 -> U+FFFD
const inputs = mode === "--files" ? rest.map((f) => dec.decode(readFileSync(f)))
             : JSON.parse(readFileSync(rest[0], "utf8"));
const out = [];
for (const s of inputs) out.push(JSON.stringify(tok.encode(s, { add_special_tokens: false }).ids));
process.stdout.write(out.join("\n") + "\n");
