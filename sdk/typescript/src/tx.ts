/**
 * Transactions (docs/spec/03-transactions.md): typed bodies for all ten types, and the one
 * way to sign them. A body is checked by nodes field by field; the types here catch the
 * common mistakes (a hex string where bytes belong, a float amount) before a round trip.
 */
import { encode, fromHex, hex, type Value, type ValueMap } from "./codec.js";
import { KeyPair, signBytes, TX_TAG, txId } from "./crypto.js";

type Bytes = Uint8Array;
type Int = number | bigint;

export interface Bodies {
  "party.register": { party: Bytes; role: "charity" | "platform" | "regulator"; name: string; org_id: string };
  "party.suspend": { party: Bytes; reason: string };
  "campaign.open": { campaign: string; title: string; currency: string; goal: Int };
  "donation.record": {
    donation: string;
    donor: Bytes;
    charity: Bytes;
    campaign: string | null;
    amount: Int;
    currency: string;
    received_at: Int;
  };
  "donation.confirm": { platform: Bytes; donation: string };
  "funds.transfer": {
    transfer: string;
    from_fund: string;
    to: Bytes;
    to_fund: string;
    amount: Int;
    currency: string;
    purpose: string;
  };
  "funds.disburse": {
    disbursement: string;
    fund: string;
    amount: Int;
    currency: string;
    category: "program" | "admin" | "fundraising";
    payee: string;
    purpose: string;
    evidence: Bytes[];
  };
  "donation.refund": { refund: string; platform: Bytes; donation: string; amount: Int };
  "audit.attest": {
    attestation: string;
    charity: Bytes;
    period: string;
    opinion: "clean" | "qualified" | "adverse" | "disclaimer";
    report: Bytes;
    note: string;
  };
  "evidence.submit": { votes: [Vote, Vote] };
}

export type TxType = keyof Bodies;
export const TX_TYPES: TxType[] = [
  "party.register",
  "party.suspend",
  "campaign.open",
  "donation.record",
  "donation.confirm",
  "funds.transfer",
  "funds.disburse",
  "donation.refund",
  "audit.attest",
  "evidence.submit",
];

export interface Vote {
  kind: "prevote" | "precommit";
  chain: string;
  height: Int;
  round: Int;
  block_hash: Bytes | null;
  validator: Bytes;
  sig: Bytes;
}

export interface Tx<T extends TxType = TxType> {
  chain: string;
  type: T;
  signer: Bytes;
  nonce: Int;
  body: Bodies[T];
  sig: Bytes;
}

/** A signed tx with its exact bytes (what to submit) and its id. */
export interface SignedTx<T extends TxType = TxType> {
  tx: Tx<T>;
  encoded: Uint8Array;
  id: Uint8Array;
  idHex: string;
}

export const MAX_AMOUNT = 10n ** 15n;

/** A nonce that makes otherwise equal txs distinct: milliseconds and random low bits. */
export function freshNonce(): bigint {
  const random = new Uint32Array(1);
  crypto.getRandomValues(random);
  return (BigInt(Date.now()) << 20n) | BigInt((random[0] as number) & 0xfffff);
}

export function txSignBytes(tx: Omit<Tx, "sig"> | Tx): Uint8Array {
  return signBytes(TX_TAG, tx as unknown as ValueMap);
}

/** Build and sign a tx of `type` for `chain`. */
export function buildTx<T extends TxType>(
  chain: string,
  type: T,
  key: KeyPair,
  body: Bodies[T],
  nonce: Int = freshNonce(),
): SignedTx<T> {
  const unsigned = { chain, type, signer: key.publicKey, nonce, body };
  const sig = key.sign(txSignBytes(unsigned));
  const tx: Tx<T> = { ...unsigned, sig };
  const encoded = encode(tx as unknown as Value);
  const id = txId(encoded);
  return { tx, encoded, id, idHex: hex(id) };
}

const BIN_KEYS = new Set([
  "signer",
  "sig",
  "party",
  "donor",
  "charity",
  "platform",
  "to",
  "report",
  "evidence",
  "block_hash",
  "validator",
]);

/** A tx from its JSON view (bin as hex), using the fixed key set of the protocol. */
export function txFromJson(json: unknown): Tx {
  const convert = (value: unknown, key: string | null): Value => {
    if (key !== null && BIN_KEYS.has(key)) {
      if (typeof value === "string") return fromHex(value);
      if (Array.isArray(value)) return value.map((v) => convert(v, key));
    }
    if (Array.isArray(value)) return value.map((v) => convert(v, null));
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, convert(v, k)]));
    }
    return value as Value;
  };
  return convert(json, null) as unknown as Tx;
}
