// Makes tests/fixtures/tokenizer/cases_transformersjs.json with transformers.js's tokenizer
// engine (@huggingface/tokenizers, which @huggingface/transformers bundles): a second, independent
// cross-check of the C++ tokenizer next to the Hugging Face `tokenizers` fixture (cases.json, made
// by make_fixtures.py on the GPU machine). Both are read by text_parity_test.
//
// Setup, outside the repository (onnxruntime's install script needs the network, and the
// tokenizer does not need onnxruntime):
//   mkdir -p /tmp/tjs && cd /tmp/tjs && npm init -y &&
//     npm install --ignore-scripts @huggingface/transformers@4.3.1   # @huggingface/tokenizers 0.2.0
// Run from that directory (packages are resolved from the current directory):
//   node <repo>/tests/reference/make_tokenizer_cases.mjs <repo>/third_party/tokenizer/tokenizer.json \
//     <repo>/tests/reference/tokenizer_corpus.json \
//     <repo>/tests/fixtures/tokenizer/cases_transformersjs.json
//
// Output: a JSON array, one object per corpus string:
//   text: the string; ids: encode(text) without added special tokens;
//   decoded: decode(ids) keeping special tokens, no clean-up of spaces;
//   decoded_skip: decode(ids) dropping special tokens;
//   prefix_decoded (only for non-ASCII texts of at most 64 ids): decode(ids[0:k]) for
//     k = 1 .. len(ids) - 1, which exercises U+FFFD for characters cut between tokens.
// The same fields as make_fixtures.py writes (a bare array here, {"cases": [...]} there), plus
// prefix_decoded; all but text/ids/decoded are optional for the parity test.
//
// Known differences from HF tokenizers (none shows in this corpus): tokenizers.js uses the
// Unicode 17 tables of Node's ICU for \p{L} / \p{N} (HF's Oniguruma has 16.0), and folds case in
// (?i:...) for ASCII only (Oniguruma also matches U+017F for s).

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const [tokenizerPath, corpusPath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node make_tokenizer_cases.mjs TOKENIZER_JSON CORPUS_JSON OUT_JSON");
  process.exit(2);
}
const require = createRequire(path.join(process.cwd(), "noop.js"));
const { Tokenizer } = require("@huggingface/tokenizers");

const tokenizerJson = JSON.parse(fs.readFileSync(tokenizerPath, "utf8"));
const configPath = path.join(path.dirname(tokenizerPath), "tokenizer_config.json");
const config = fs.existsSync(configPath) ? JSON.parse(fs.readFileSync(configPath, "utf8")) : {};
const tokenizer = new Tokenizer(tokenizerJson, config);
// tokenizers.js refuses an empty id list; HF decodes it to "".
const decode = (ids, skip) => ids.length === 0 ? "" :
  tokenizer.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false });

const corpus = JSON.parse(fs.readFileSync(corpusPath, "utf8"));
const cases = corpus.map((text) => {
  const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
  const entry = { text, ids, decoded: decode(ids, false), decoded_skip: decode(ids, true) };
  if (/[^\x00-\x7f]/.test(text) && ids.length <= 64) {
    entry.prefix_decoded = [];
    for (let k = 1; k < ids.length; ++k) entry.prefix_decoded.push(decode(ids.slice(0, k), false));
  }
  return entry;
});

// One case per line keeps diffs readable; non-ASCII is escaped so the file is plain ASCII.
const escape = (s) => s.replace(/[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
const lines = cases.map((c) => "  " + escape(JSON.stringify(c)));
fs.writeFileSync(outPath, "[\n" + lines.join(",\n") + "\n]\n");
console.log(`wrote ${cases.length} cases to ${outPath}`);
