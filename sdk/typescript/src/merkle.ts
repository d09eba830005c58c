/**
 * RFC 9162 Merkle trees (docs/spec/05-chain.md): roots, inclusion and consistency proof
 * verification, step for step as the RFC writes them, so that a receipt from a node can be
 * checked with nothing but the certified header it names.
 */
import { equalBytes } from "./codec.js";
import { concat, H } from "./crypto.js";

export const EMPTY_ROOT = H(new Uint8Array(0));

export function leafHash(data: Uint8Array): Uint8Array {
  return H(concat(new Uint8Array([0]), data));
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return H(concat(new Uint8Array([1]), left, right));
}

/** MTH over the leaf inputs (for a block: its tx ids). */
export function rootOf(leafInputs: Uint8Array[]): Uint8Array {
  if (leafInputs.length === 0) return EMPTY_ROOT;
  let level = leafInputs.map(leafHash);
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) {
      next.push(nodeHash(level[i] as Uint8Array, level[i + 1] as Uint8Array));
    }
    if (level.length % 2) next.push(level[level.length - 1] as Uint8Array);
    level = next;
  }
  return level[0] as Uint8Array;
}

const isHash = (h: unknown): h is Uint8Array => h instanceof Uint8Array && h.length === 32;

/** RFC 9162 §2.1.3.2. Sizes are numbers: a log of 2^53 entries is out of reach. */
export function verifyInclusion(
  leafInput: Uint8Array,
  leafIndex: number,
  treeSize: number,
  path: Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!(leafIndex >= 0 && leafIndex < treeSize) || !isHash(root) || !path.every(isHash)) return false;
  let fn = BigInt(leafIndex);
  let sn = BigInt(treeSize - 1);
  let r = leafHash(leafInput);
  for (const p of path) {
    if (sn === 0n) return false;
    if (fn & 1n || fn === sn) {
      r = nodeHash(p, r);
      while (fn !== 0n && !(fn & 1n)) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && equalBytes(r, root);
}

/** RFC 9162 §2.1.4.2, with first == second proven by an empty path and equal roots. */
export function verifyConsistency(
  first: number,
  second: number,
  firstRoot: Uint8Array,
  secondRoot: Uint8Array,
  path: Uint8Array[],
): boolean {
  if (!(first >= 1 && first <= second) || !isHash(firstRoot) || !isHash(secondRoot)) return false;
  if (!path.every(isHash)) return false;
  if (first === second) return path.length === 0 && equalBytes(firstRoot, secondRoot);
  if (path.length === 0) return false;
  const proof = [...path];
  if ((first & (first - 1)) === 0) proof.unshift(firstRoot);
  let fn = BigInt(first - 1);
  let sn = BigInt(second - 1);
  while (fn & 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = proof[0] as Uint8Array;
  let sr = fr;
  for (const c of proof.slice(1)) {
    if (sn === 0n) return false;
    if (fn & 1n || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn !== 0n && !(fn & 1n)) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return equalBytes(fr, firstRoot) && equalBytes(sr, secondRoot) && sn === 0n;
}
