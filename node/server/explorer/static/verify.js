// Almoner track page: check every step's proof in the browser, trusting only the pinned keys.
//
// For the head the trace proves against: the block header's bytes hash to the head's block
// hash (SHA-256 over "almoner/header/1" 0x00 header), its validators_hash matches the pinned
// validator keys, and its commit certificate holds a quorum of distinct pinned validators'
// Ed25519 precommit signatures. For each step: the transaction's canonical bytes hash to its
// tx id, say what the step claims (type, amount, ...), and the RFC 9162 inclusion proof
// leads from the tx id to the header's log_root. Nothing the node says is taken on trust.
"use strict";

(function () {
  const enc = new TextEncoder();

  function hexToBytes(hex) {
    if (typeof hex !== "string" || hex.length % 2 || /[^0-9a-f]/.test(hex)) throw new Error("bad hex");
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
    return out;
  }
  function bytesToHex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }
  function equal(a, b) {
    if (a.length !== b.length) return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
    return diff === 0;
  }
  async function sha256(data) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  }

  // -- MessagePack: a strict reader that also reports where each value's bytes are -------
  function read(buf, pos) {
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const b = buf[pos];
    if (b === undefined) throw new Error("truncated msgpack");
    const str = (len, at) => [new TextDecoder("utf-8", { fatal: true }).decode(buf.subarray(at, at + len)), at + len];
    const bin = (len, at) => [buf.slice(at, at + len), at + len];
    const arr = (n, at) => { const out = []; for (let i = 0; i < n; i++) { const [v, e] = read(buf, at); out.push(v); at = e; } return [out, at]; };
    const map = (n, at) => {
      const out = {}; const spans = {};
      for (let i = 0; i < n; i++) {
        const [k, e1] = read(buf, at);
        const [v, e2] = read(buf, e1);
        out[k] = v; spans[k] = [e1, e2]; at = e2;
      }
      Object.defineProperty(out, "__spans", { value: spans, enumerable: false });
      return [out, at];
    };
    if (b <= 0x7f) return [b, pos + 1];
    if (b >= 0xe0) return [b - 0x100, pos + 1];
    if ((b & 0xf0) === 0x80) return map(b & 0x0f, pos + 1);
    if ((b & 0xf0) === 0x90) return arr(b & 0x0f, pos + 1);
    if ((b & 0xe0) === 0xa0) return str(b & 0x1f, pos + 1);
    switch (b) {
      case 0xc0: return [null, pos + 1];
      case 0xc2: return [false, pos + 1];
      case 0xc3: return [true, pos + 1];
      case 0xc4: return bin(view.getUint8(pos + 1), pos + 2);
      case 0xc5: return bin(view.getUint16(pos + 1), pos + 3);
      case 0xc6: return bin(view.getUint32(pos + 1), pos + 5);
      case 0xcc: return [view.getUint8(pos + 1), pos + 2];
      case 0xcd: return [view.getUint16(pos + 1), pos + 3];
      case 0xce: return [view.getUint32(pos + 1), pos + 5];
      case 0xcf: return [Number(view.getBigUint64(pos + 1)), pos + 9];
      case 0xd0: return [view.getInt8(pos + 1), pos + 2];
      case 0xd1: return [view.getInt16(pos + 1), pos + 3];
      case 0xd2: return [view.getInt32(pos + 1), pos + 5];
      case 0xd3: return [Number(view.getBigInt64(pos + 1)), pos + 9];
      case 0xd9: return str(view.getUint8(pos + 1), pos + 2);
      case 0xda: return str(view.getUint16(pos + 1), pos + 3);
      case 0xdb: return str(view.getUint32(pos + 1), pos + 5);
      case 0xdc: return arr(view.getUint16(pos + 1), pos + 3);
      case 0xdd: return arr(view.getUint32(pos + 1), pos + 5);
      case 0xde: return map(view.getUint16(pos + 1), pos + 3);
      case 0xdf: return map(view.getUint32(pos + 1), pos + 5);
      default: throw new Error("msgpack type not used by the protocol: 0x" + b.toString(16));
    }
  }
  function decodeWithSpans(buf) {
    const [value, end] = read(buf, 0);
    if (end !== buf.length) throw new Error("trailing bytes");
    return value;
  }

  // -- canonical MessagePack writer for the one map we must build: a precommit vote -------
  function packStr(s) {
    const raw = enc.encode(s);
    if (raw.length < 32) return concat(Uint8Array.of(0xa0 | raw.length), raw);
    if (raw.length < 256) return concat(Uint8Array.of(0xd9, raw.length), raw);
    return concat(Uint8Array.of(0xda, raw.length >> 8, raw.length & 0xff), raw);
  }
  function packUint(n) {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error("bad uint");
    if (n < 0x80) return Uint8Array.of(n);
    if (n < 0x100) return Uint8Array.of(0xcc, n);
    if (n < 0x10000) return Uint8Array.of(0xcd, n >> 8, n & 0xff);
    const out = new Uint8Array(n < 0x100000000 ? 5 : 9);
    const view = new DataView(out.buffer);
    if (n < 0x100000000) { out[0] = 0xce; view.setUint32(1, n); } else { out[0] = 0xcf; view.setBigUint64(1, BigInt(n)); }
    return out;
  }
  function packBin(bytes) {
    if (bytes.length > 255) throw new Error("bin too long");
    return concat(Uint8Array.of(0xc4, bytes.length), bytes);
  }
  function voteSignBytes(chain, height, round, blockHash, validator) {
    // Keys in canonical (bytewise) order: block_hash, chain, height, kind, round, validator.
    return concat(
      enc.encode("almoner/vote/1"), Uint8Array.of(0x00, 0x86),
      packStr("block_hash"), packBin(blockHash),
      packStr("chain"), packStr(chain),
      packStr("height"), packUint(height),
      packStr("kind"), packStr("precommit"),
      packStr("round"), packUint(round),
      packStr("validator"), packBin(validator),
    );
  }
  function validatorsHashInput(keys) {
    const sorted = keys.map(bytesToHex).sort().map(hexToBytes);
    const head = sorted.length < 16 ? Uint8Array.of(0x90 | sorted.length) : Uint8Array.of(0xdc, sorted.length >> 8, sorted.length & 0xff);
    return concat(head, ...sorted.map(packBin));
  }

  // -- RFC 9162 §2.1.3.2 inclusion proof --------------------------------------------------
  async function verifyInclusion(leaf, index, size, path, root) {
    if (!(index < size) || index < 0) return false;
    let fn = index, sn = size - 1;
    let r = await sha256(concat(Uint8Array.of(0x00), leaf));
    for (const p of path) {
      if (p.length !== 32 || sn === 0) return false;
      if ((fn & 1) === 1 || fn === sn) {
        r = await sha256(concat(Uint8Array.of(0x01), p, r));
        if ((fn & 1) === 0) { while ((fn & 1) === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); } }
      } else {
        r = await sha256(concat(Uint8Array.of(0x01), r, p));
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    return sn === 0 && equal(r, root);
  }

  async function ed25519Verify(pub, sig, data) {
    const key = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
    return crypto.subtle.verify({ name: "Ed25519" }, key, sig, data);
  }

  async function fetchBytes(url) {
    const res = await fetch(url, { headers: { accept: "application/msgpack" }, cache: "no-store" });
    if (!res.ok) throw new Error(url + ": HTTP " + res.status);
    return new Uint8Array(await res.arrayBuffer());
  }

  // The certified head: header bytes, validators and the commit certificate.
  async function checkHead(pinned, head) {
    const raw = await fetchBytes("/v1/blocks/" + head.height);
    const block = decodeWithSpans(raw);
    const [hs, he] = block.__spans.header;
    const digest = await sha256(concat(enc.encode("almoner/header/1"), Uint8Array.of(0), raw.subarray(hs, he)));
    const header = block.header;
    const keys = pinned.validators.map(hexToBytes);
    const problems = [];
    if (!equal(digest, hexToBytes(head.block_hash))) problems.push("header hash");
    if (header.chain !== pinned.chain || header.height !== head.height) problems.push("chain or height");
    if (!equal(await sha256(validatorsHashInput(keys)), header.validators_hash)) problems.push("validators_hash");
    const cert = block.commit;
    if (cert.height !== header.height || !equal(cert.block_hash, digest)) problems.push("certificate target");
    const seen = new Set();
    for (const vote of cert.votes) {
      const who = bytesToHex(vote.validator);
      if (seen.has(who) || !pinned.validators.includes(who)) continue;
      const data = voteSignBytes(pinned.chain, cert.height, cert.round, digest, vote.validator);
      if (await ed25519Verify(vote.validator, vote.sig, data)) seen.add(who);
    }
    const quorum = Math.floor((2 * keys.length) / 3) + 1;
    if (seen.size < quorum) problems.push("quorum " + seen.size + "/" + quorum);
    return { header, problems };
  }

  async function checkStep(li, trace, header) {
    const txHex = li.dataset.tx;
    const expect = JSON.parse(li.dataset.expect || "{}");
    const proof = trace.proofs[txHex];
    if (!proof || proof.tree_size !== header.log_size) return false;
    const path = proof.path.map(hexToBytes);
    const included = await verifyInclusion(hexToBytes(txHex), proof.leaf_index, proof.tree_size, path, header.log_root);
    if (!included) return false;
    const raw = await fetchBytes("/v1/txs/" + txHex);
    const doc = decodeWithSpans(raw);
    const [ts, te] = doc.__spans.tx;
    if (!equal(await sha256(raw.subarray(ts, te)), hexToBytes(txHex))) return false;
    const tx = doc.tx;
    if (expect.type && tx.type !== expect.type) return false;
    for (const [name, value] of Object.entries(expect)) {
      if (name !== "type" && tx.body[name] !== value) return false;
    }
    return true;
  }

  function show(el, ok, words) {
    el.textContent = ok ? "verified" : "failed";
    el.className = "status " + (ok ? "verified" : "failed");
    const word = el.nextElementSibling;
    if (word && word.classList.contains("status-word")) word.textContent = ok ? words.verified : words.failed;
  }

  async function main() {
    const pinned = JSON.parse(document.getElementById("pinned").textContent);
    const words = JSON.parse(document.getElementById("words").textContent);
    const detail = document.querySelector('[data-testid="proof-detail"]');
    const summary = document.querySelector('[data-testid="proof-summary"]');
    const steps = Array.from(document.querySelectorAll('[data-testid="trace-step"][data-tx]'));
    const fail = (reason) => {
      for (const li of steps) show(li.querySelector('[data-testid="proof-status"]'), false, words);
      show(summary, false, words);
      detail.textContent = reason;
    };
    if (!window.crypto || !crypto.subtle) return fail(words.unsupported);
    let trace;
    try {
      const res = await fetch(pinned.trace, { cache: "no-store" });
      trace = await res.json();
      const { header, problems } = await checkHead(pinned, trace.head);
      const results = await Promise.all(steps.map(async (li) => {
        let ok = false;
        try { ok = problems.length === 0 && await checkStep(li, trace, header); } catch (e) { ok = false; }
        show(li.querySelector('[data-testid="proof-status"]'), ok, words);
        return ok;
      }));
      const all = problems.length === 0 && results.every(Boolean);
      show(summary, all, words);
      detail.textContent = problems.length ? "head: " + problems.join(", ") :
        "head " + trace.head.height + " · log " + header.log_size + " · " + bytesToHex(header.log_root).slice(0, 16) + "…";
    } catch (e) {
      fail(String(e && e.message || e));
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", main);
  else main();
})();
