/**
 * Hashing, Ed25519 and the sign-bytes rule (docs/spec/02-keys-and-signing.md).
 *
 * Every signature the protocol knows is over `tag || 0x00 || canonical(map without sig)`;
 * building those bytes in one place is what keeps a tx signature from ever being valid as
 * a vote or on another chain.
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { sha256 } from "@noble/hashes/sha2.js";

import { encode, hex, type Value, type ValueMap } from "./codec.js";

export const TX_TAG = "almoner/tx/1";
export const PROPOSAL_TAG = "almoner/proposal/1";
export const VOTE_TAG = "almoner/vote/1";
export const HEADER_TAG = "almoner/header/1";
export const P2P_TAG = "almoner/p2p/1";

const ascii = new TextEncoder();

export function H(data: Uint8Array): Uint8Array {
  return sha256(data);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** `tag || 0x00 || canonical(obj without "sig")`. */
export function signBytes(tag: string, obj: ValueMap): Uint8Array {
  const unsigned: ValueMap = {};
  for (const [k, v] of Object.entries(obj)) if (k !== "sig") unsigned[k] = v;
  return concat(ascii.encode(tag), new Uint8Array([0]), encode(unsigned));
}

/** `H("almoner/header/1" || 0x00 || canonical(header))`. */
export function blockHash(header: ValueMap): Uint8Array {
  return H(concat(ascii.encode(HEADER_TAG), new Uint8Array([0]), encode(header)));
}

/** `H(canonical(tx))` over the whole signed tx. */
export function txId(tx: ValueMap | Uint8Array): Uint8Array {
  return H(tx instanceof Uint8Array ? tx : encode(tx));
}

/** An Ed25519 key held in memory: the 32-byte seed is the secret. */
export class KeyPair {
  readonly publicKey: Uint8Array;

  private constructor(readonly seed: Uint8Array) {
    this.publicKey = ed25519.getPublicKey(seed);
  }

  static fromSeed(seed: Uint8Array): KeyPair {
    if (seed.length !== 32) throw new Error("an Ed25519 seed is 32 bytes");
    return new KeyPair(Uint8Array.from(seed));
  }

  static generate(): KeyPair {
    return new KeyPair(ed25519.utils.randomSecretKey());
  }

  sign(message: Uint8Array): Uint8Array {
    return ed25519.sign(message, this.seed);
  }

  toString(): string {
    return `KeyPair(${hex(this.publicKey)})`;
  }
}

/** Strict RFC 8032 verification (no ZIP-215 leniency), as nodes verify. */
export function verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

export type { Value };
