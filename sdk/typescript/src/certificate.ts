/**
 * Commit certificates (docs/spec/05-chain.md, "Commit certificates"): a quorum of distinct
 * validators' precommits for one block. Checking one against validators pinned from
 * genesis is what lets a client trust a header without trusting the node that served it.
 */
import { equalBytes, hex, type ValueMap } from "./codec.js";
import { signBytes, verify, VOTE_TAG } from "./crypto.js";

export interface Certificate {
  height: number | bigint;
  round: number | bigint;
  block_hash: Uint8Array;
  votes: { validator: Uint8Array; sig: Uint8Array }[];
}

export class CertificateError extends Error {
  override name = "CertificateError";
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(`${reason}: ${message}`);
  }
}

export function quorum(n: number): number {
  return Math.floor((2 * n) / 3) + 1;
}

const isInt = (v: unknown): boolean =>
  (typeof v === "number" && Number.isSafeInteger(v)) || typeof v === "bigint";

function checkShape(cert: unknown): asserts cert is Certificate {
  const c = cert as ValueMap;
  const keys = c && typeof c === "object" ? Object.keys(c).sort().join(",") : "";
  if (keys !== "block_hash,height,round,votes") throw new CertificateError("malformed", "certificate keys differ");
  if (!isInt(c.height) || Number(c.height) < 1 || !isInt(c.round) || Number(c.round) < 0) {
    throw new CertificateError("malformed", "height or round out of range");
  }
  if (!(c.block_hash instanceof Uint8Array) || c.block_hash.length !== 32) {
    throw new CertificateError("malformed", "block_hash is not 32 bytes");
  }
  if (!Array.isArray(c.votes)) throw new CertificateError("malformed", "votes is not an array");
  for (const v of c.votes as ValueMap[]) {
    if (!v || typeof v !== "object" || Object.keys(v).sort().join(",") !== "sig,validator") {
      throw new CertificateError("malformed", "a vote entry is not {validator, sig}");
    }
    if (!(v.validator instanceof Uint8Array) || v.validator.length !== 32) {
      throw new CertificateError("malformed", "a validator is not 32 bytes");
    }
    if (!(v.sig instanceof Uint8Array) || v.sig.length !== 64) {
      throw new CertificateError("malformed", "a sig is not 64 bytes");
    }
  }
}

/**
 * Throw CertificateError unless `cert` proves that block `blockHash` was committed at
 * `height` on `chain` by a quorum of `validators` (the set in force at that height).
 */
export function verifyCertificate(
  cert: unknown,
  chain: string,
  validators: Uint8Array[],
  expected: { height?: number; blockHash?: Uint8Array } = {},
): void {
  checkShape(cert);
  if (expected.height !== undefined && Number(cert.height) !== expected.height) {
    throw new CertificateError("wrong_height", `certificate is for height ${cert.height}`);
  }
  if (expected.blockHash !== undefined && !equalBytes(cert.block_hash, expected.blockHash)) {
    throw new CertificateError("wrong_block", "certificate is for another block");
  }
  const members = new Set(validators.map(hex));
  const seen = new Set<string>();
  for (const v of cert.votes) {
    const id = hex(v.validator);
    if (seen.has(id)) throw new CertificateError("duplicate_validator", id);
    if (!members.has(id)) throw new CertificateError("not_member", id);
    seen.add(id);
  }
  if (seen.size < quorum(members.size)) {
    throw new CertificateError("no_quorum", `${seen.size} precommits, quorum is ${quorum(members.size)}`);
  }
  for (const v of cert.votes) {
    const vote = {
      kind: "precommit",
      chain,
      height: cert.height,
      round: cert.round,
      block_hash: cert.block_hash,
      validator: v.validator,
    };
    if (!verify(v.validator, signBytes(VOTE_TAG, vote), v.sig)) {
      throw new CertificateError("bad_signature", hex(v.validator));
    }
  }
}
