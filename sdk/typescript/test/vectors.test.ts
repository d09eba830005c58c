/** The SDK against docs/spec/vectors: every byte must equal what the node computes. */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  blockHash,
  CertificateError,
  CodecError,
  decode,
  encode,
  fromHex,
  H,
  hex,
  KeyPair,
  parseKeyFile,
  quorum,
  rootOf,
  signBytes,
  txFromJson,
  txSignBytes,
  buildTx,
  verify,
  verifyCertificate,
  verifyConsistency,
  verifyInclusion,
  type Tx,
  type TxType,
  type ValueMap,
} from "../src/index.js";
import { untyped, vectors } from "./helpers.js";

test("encoding: every valid value encodes to its bytes and decodes back", () => {
  const v = vectors("encoding.json");
  assert.ok(v.valid.length > 30);
  for (const entry of v.valid) {
    const value = untyped(entry.value);
    assert.equal(hex(encode(value)), entry.hex, entry.name);
    assert.equal(hex(encode(decode(fromHex(entry.hex)))), entry.hex, entry.name);
  }
});

test("encoding: every rejected input fails with the node's code", () => {
  const v = vectors("encoding.json");
  for (const entry of v.rejected) {
    assert.throws(
      () => decode(fromHex(entry.hex), entry.max_size ?? 65536),
      (err: unknown) => err instanceof CodecError && err.code === entry.error.code,
      entry.name,
    );
  }
});

test("keys: public keys, signatures and key files from seeds", () => {
  for (const entry of vectors("keys.json").keys) {
    const key = KeyPair.fromSeed(fromHex(entry.seed));
    assert.equal(hex(key.publicKey), entry.public_key);
    assert.equal(hex(key.sign(fromHex(entry.message))), entry.signature);
    assert.ok(verify(key.publicKey, fromHex(entry.message), fromHex(entry.signature)));
    assert.equal(hex(parseKeyFile(entry.key_file).publicKey), entry.public_key);
  }
});

test("keys: a sealed key file opens with its passphrase, and only with it", () => {
  const sealed = vectors("keys.json").encrypted;
  assert.equal(hex(parseKeyFile(sealed.key_file, sealed.passphrase).publicKey), sealed.public_key);
  assert.throws(() => parseKeyFile(sealed.key_file, "wrong"), /wrong passphrase/);
  assert.throws(() => parseKeyFile(sealed.key_file), /passphrase is required/);
});

test("transactions: sign bytes, signature, encoding and id of every type", () => {
  const v = vectors("transactions.json");
  assert.equal(new Set(v.txs.map((t: any) => t.type)).size, 10);
  for (const entry of v.txs) {
    const fromTyped = untyped(entry.tx) as unknown as Tx;
    const fromJson = txFromJson(entry.json);
    assert.equal(hex(encode(fromJson as never)), entry.encoded, `${entry.name} (JSON view)`);
    const key = KeyPair.fromSeed(fromHex(entry.signer_seed));
    const built = buildTx(v.chain_id, fromTyped.type as TxType, key, fromTyped.body as never, fromTyped.nonce);
    assert.equal(hex(txSignBytes(built.tx)), entry.sign_bytes, entry.name);
    assert.equal(hex(built.tx.sig), entry.signature, entry.name);
    assert.equal(hex(built.encoded), entry.encoded, entry.name);
    assert.equal(built.idHex, entry.tx_id, entry.name);
  }
});

test("transactions: a tampered body no longer verifies", () => {
  const v = vectors("transactions.json");
  const bad = v.rejected.find((r: any) => r.error.code === "bad_signature");
  const tx = decode(fromHex(bad.encoded)) as unknown as Tx;
  assert.equal(verify(tx.signer, txSignBytes(tx), tx.sig), false);
});

test("chain: genesis hash, header hashes, txs roots and certificates", () => {
  const v = vectors("chain.json");
  assert.equal(hex(H(fromHex(v.genesis_canonical))), v.genesis_hash);
  const validators = v.genesis.validators.map((x: any) => fromHex(x.pubkey));
  const sorted = [...validators].sort((a: Uint8Array, b: Uint8Array) => (hex(a) < hex(b) ? -1 : 1));
  assert.equal(hex(H(encode(sorted))), v.validators_hash);
  assert.equal(quorum(validators.length), v.quorum);
  for (const block of v.blocks) {
    const header = untyped(block.header) as ValueMap;
    assert.equal(hex(blockHash(header)), block.block_hash);
    assert.equal(hex(rootOf(block.tx_ids.map((t: string) => fromHex(t)))), block.txs_root);
    const cert = untyped(block.certificate) as ValueMap;
    verifyCertificate(cert, v.genesis.chain_id, validators, {
      height: Number(header.height),
      blockHash: fromHex(block.block_hash),
    });
  }
  for (const bad of v.bad_certificates) {
    assert.throws(
      () =>
        verifyCertificate(untyped(bad.certificate), v.genesis.chain_id, validators, {
          height: 1,
          blockHash: fromHex(v.blocks[0].block_hash),
        }),
      (err: unknown) => err instanceof CertificateError && err.reason === bad.reason,
      bad.name,
    );
  }
});

test("consensus: proposal, vote and p2p envelope sign bytes and signatures", () => {
  const v = vectors("consensus.json");
  const key = KeyPair.fromSeed(fromHex(v.signer_seed));
  for (const entry of v.messages) {
    const message = untyped(entry.message) as ValueMap;
    const tag = message.kind === "proposal" ? "almoner/proposal/1" : "almoner/vote/1";
    assert.equal(hex(signBytes(tag, message)), entry.sign_bytes, entry.name);
    assert.equal(hex(key.sign(fromHex(entry.sign_bytes))), entry.sig, entry.name);
  }
  const envelope = untyped(v.p2p_envelope.envelope) as ValueMap;
  assert.equal(hex(signBytes("almoner/p2p/1", envelope)), v.p2p_envelope.sign_bytes);
  assert.equal(hex(encode(envelope)), v.p2p_envelope.encoded);
});

test("merkle: roots, inclusion and consistency proofs, and tampering fails", () => {
  const v = vectors("merkle.json");
  const leaves = v.leaf_inputs.map((x: string) => fromHex(x));
  const roots = v.roots.map((r: any) => fromHex(r.root));
  v.roots.forEach((r: any) => assert.equal(hex(rootOf(leaves.slice(0, r.tree_size))), r.root));
  for (const p of v.inclusion) {
    const path = p.path.map((x: string) => fromHex(x));
    assert.ok(verifyInclusion(leaves[p.leaf_index], p.leaf_index, p.tree_size, path, roots[p.tree_size]));
    if (path.length) {
      const bad = path.map((x: Uint8Array) => Uint8Array.from(x));
      bad[0][0] ^= 1;
      assert.equal(verifyInclusion(leaves[p.leaf_index], p.leaf_index, p.tree_size, bad, roots[p.tree_size]), false);
    }
  }
  for (const p of v.consistency) {
    const path = p.path.map((x: string) => fromHex(x));
    assert.ok(verifyConsistency(p.first, p.second, roots[p.first], roots[p.second], path), `${p.first}->${p.second}`);
    if (path.length) {
      const bad = path.map((x: Uint8Array) => Uint8Array.from(x));
      bad[bad.length - 1][0] ^= 1;
      assert.equal(verifyConsistency(p.first, p.second, roots[p.first], roots[p.second], bad), false);
    }
  }
});
