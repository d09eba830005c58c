/**
 * The HTTP client (docs/spec/07-http-api.md): submit with retries on `busy`, batches,
 * waiting for commit, and receipts and traces checked against validators pinned from a
 * genesis hash — so a platform never has to take a node's word for a commit.
 */
import { decode, decodeStream, equalBytes, fromHex, hex, type Value, type ValueMap } from "./codec.js";
import { verifyCertificate } from "./certificate.js";
import { blockHash, H } from "./crypto.js";
import { verifyInclusion } from "./merkle.js";
import type { SignedTx } from "./tx.js";

const MSGPACK = "application/msgpack";
const MAX_VIEW_BYTES = 64 * 1024 * 1024;

/** A refusal from a node: the protocol's error code, HTTP status and details. */
export class AlmonerError extends Error {
  override name = "AlmonerError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(`${code}: ${message}`);
  }
}

/** A receipt or trace that does not prove what it claims. */
export class ProofError extends Error {
  override name = "ProofError";
}

export interface ClientOptions {
  /** Attempts for a request answered `busy` (503/429) or failing at the network level. */
  retries?: number;
  /** First backoff in ms; doubled per attempt, with jitter, capped by maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  timeoutMs?: number;
}

export interface Receipt {
  tx_id: Uint8Array;
  status: "committed";
  height: number;
  block_hash: Uint8Array;
  index_in_block: number;
  proof: { leaf_index: number; tree_size: number; path: Uint8Array[] };
  head: { height: number; block_hash: Uint8Array };
}

export type SubmitResult = { status: "pending"; tx_id: Uint8Array } | Receipt;

export interface BatchResult {
  index: number;
  status: "pending" | "committed" | "rejected";
  tx_id?: Uint8Array;
  error?: { code: string; message: string; details: Record<string, unknown> };
}

/** One commit event: a block's txs that matched the stream's filter (ids and keys as hex). */
export interface CommitEvent {
  height: number;
  block_hash: string;
  time: number;
  txs: { tx_id: string; index_in_block: number; type: string; signer: string; tx: Record<string, unknown> }[];
}

export interface EventOptions {
  /** First height to send; default: only blocks committed from now on. */
  from?: number;
  /** Resume after this height (what the last event's `height` was). */
  after?: number;
  until?: number;
  party?: Uint8Array | string;
  types?: string[];
  signal?: AbortSignal;
}

export interface Trust {
  chainId: string;
  validators: Uint8Array[];
  genesisHash: Uint8Array;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class Client {
  private readonly base: string;
  private readonly opts: Required<ClientOptions>;

  constructor(url: string, options: ClientOptions = {}) {
    this.base = url.replace(/\/+$/, "");
    this.opts = { retries: 6, backoffMs: 200, maxBackoffMs: 5000, timeoutMs: 30000, ...options };
  }

  private backoff(attempt: number, retryAfter: string | null): number {
    const hinted = retryAfter !== null && /^\d+$/.test(retryAfter) ? Number(retryAfter) * 1000 : 0;
    const exp = Math.min(this.opts.maxBackoffMs, this.opts.backoffMs * 2 ** attempt);
    return Math.max(hinted, exp / 2 + Math.random() * (exp / 2));
  }

  /** One request, retried on busy and on network failures (the same bytes are always safe to resend). */
  async request(method: string, path: string, body?: Uint8Array, query: Record<string, string> = {}): Promise<Value> {
    const qs = new URLSearchParams(query).toString();
    const url = `${this.base}${path}${qs ? `?${qs}` : ""}`;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(url, {
          method,
          headers: { accept: MSGPACK, ...(body ? { "content-type": MSGPACK } : {}) },
          ...(body ? { body: body as unknown as BodyInit } : {}),
          signal: AbortSignal.timeout(this.opts.timeoutMs),
        });
      } catch (err) {
        if (attempt + 1 >= this.opts.retries) throw err;
        await sleep(this.backoff(attempt, null));
        continue;
      }
      const raw = new Uint8Array(await response.arrayBuffer());
      if (response.ok) return path === "/v1/blocks" ? decodeStream(raw, MAX_VIEW_BYTES) : decode(raw, MAX_VIEW_BYTES);
      const error = parseError(response.status, raw);
      if (error.code === "busy" || response.status === 429) {
        if (attempt + 1 < this.opts.retries) {
          await sleep(this.backoff(attempt, response.headers.get("retry-after")));
          continue;
        }
      }
      throw error;
    }
  }

  async submit(tx: SignedTx | Uint8Array, options: { wait?: boolean } = {}): Promise<SubmitResult> {
    const raw = tx instanceof Uint8Array ? tx : tx.encoded;
    const query: Record<string, string> = options.wait ? { wait: "commit" } : {};
    return (await this.request("POST", "/v1/txs", raw, query)) as unknown as SubmitResult;
  }

  /** Submit many txs in one request; each result says pending, committed or rejected. */
  async submitBatch(txs: (SignedTx | Uint8Array)[]): Promise<BatchResult[]> {
    const parts = txs.map((t) => (t instanceof Uint8Array ? t : t.encoded));
    const n = parts.length;
    const header = n < 16 ? [0x90 | n] : n < 65536 ? [0xdc, n >> 8, n & 0xff] : [0xdd, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
    const body = new Uint8Array(header.length + parts.reduce((s, p) => s + p.length, 0));
    body.set(header, 0);
    let at = header.length;
    for (const p of parts) {
      body.set(p, at);
      at += p.length;
    }
    const answer = (await this.request("POST", "/v1/txs/batch", body)) as unknown as { results: BatchResult[] };
    return answer.results;
  }

  async tx(id: Uint8Array | string): Promise<{ tx: ValueMap; status: string; receipt: Receipt | null }> {
    const key = typeof id === "string" ? id : hex(id);
    return (await this.request("GET", `/v1/txs/${key}`)) as never;
  }

  /** Poll until the tx is committed (or `timeoutMs` passes) and return its receipt. */
  async waitForCommit(id: Uint8Array | string, timeoutMs = 30000): Promise<Receipt> {
    const deadline = Date.now() + timeoutMs;
    let delay = 100;
    for (;;) {
      try {
        const found = await this.tx(id);
        if (found.receipt) return found.receipt;
      } catch (err) {
        if (!(err instanceof AlmonerError && err.code === "not_found")) throw err;
      }
      if (Date.now() > deadline) throw new AlmonerError(504, "timeout", "the tx was not committed in time");
      await sleep(delay);
      delay = Math.min(1000, delay * 2);
    }
  }

  /** Submit every tx (batches of `chunk`), then wait until each accepted one commits. */
  async submitAndWait(txs: SignedTx[], chunk = 500, timeoutMs = 60000): Promise<(Receipt | BatchResult)[]> {
    const out: (Receipt | BatchResult)[] = [];
    for (let i = 0; i < txs.length; i += chunk) {
      const results = await this.submitBatch(txs.slice(i, i + chunk));
      for (const r of results) {
        out.push(r.status === "rejected" || !r.tx_id ? r : await this.waitForCommit(r.tx_id, timeoutMs));
      }
    }
    return out;
  }

  async genesis(): Promise<ValueMap> {
    return (await this.request("GET", "/v1/genesis")) as ValueMap;
  }

  /** The chain id and validators, accepted only if the genesis hashes to the pinned value. */
  async trust(pinnedGenesisHash: Uint8Array | string): Promise<Trust> {
    const pinned = typeof pinnedGenesisHash === "string" ? fromHex(pinnedGenesisHash, 32) : pinnedGenesisHash;
    const raw = await fetchBytes(`${this.base}/v1/genesis`);
    if (!equalBytes(H(raw), pinned)) throw new ProofError("the node's genesis does not match the pinned hash");
    const genesis = decode(raw, MAX_VIEW_BYTES) as ValueMap;
    const validators = (genesis.validators as ValueMap[]).map((v) => v.pubkey as Uint8Array);
    return { chainId: genesis.chain_id as string, validators, genesisHash: pinned };
  }

  async head(): Promise<ValueMap> {
    return (await this.request("GET", "/v1/head")) as ValueMap;
  }

  async block(height: number): Promise<ValueMap> {
    return (await this.request("GET", `/v1/blocks/${height}`)) as ValueMap;
  }

  /** A certified header at `height`, checked against the trusted validators. */
  async certifiedHeader(height: number, trust: Trust): Promise<ValueMap> {
    const view = await this.block(height);
    const header = view.header as ValueMap;
    const hash = blockHash(header);
    verifyCertificate(view.commit, trust.chainId, trust.validators, { height, blockHash: hash });
    if (header.chain !== trust.chainId) throw new ProofError("the header is for another chain");
    return header;
  }

  /** Check a receipt end to end: the head's certificate, then the inclusion proof. */
  async verifyReceipt(receipt: Receipt, trust: Trust): Promise<void> {
    const header = await this.certifiedHeader(Number(receipt.head.height), trust);
    if (!equalBytes(blockHash(header), receipt.head.block_hash)) throw new ProofError("the receipt names another head");
    const { leaf_index, tree_size, path } = receipt.proof;
    if (Number(header.log_size) !== Number(tree_size)) throw new ProofError("the proof is for another log size");
    if (!verifyInclusion(receipt.tx_id, Number(leaf_index), Number(tree_size), path, header.log_root as Uint8Array)) {
      throw new ProofError("the inclusion proof does not verify");
    }
    const txBlock = await this.certifiedHeader(Number(receipt.height), trust);
    if (!equalBytes(blockHash(txBlock), receipt.block_hash)) throw new ProofError("the tx's block hash differs");
  }

  /**
   * Commit events (GET /v1/events): yields each block's matching txs as it is committed.
   * Reconnects on network errors, resuming after the last height it yielded.
   */
  async *events(options: EventOptions = {}): AsyncGenerator<CommitEvent> {
    let after = options.after;
    for (let attempt = 0; ; attempt++) {
      const query: Record<string, string> = {};
      if (after === undefined && options.from !== undefined) query.from = String(options.from);
      if (options.until !== undefined) query.until = String(options.until);
      if (options.party !== undefined) query.party = typeof options.party === "string" ? options.party : hex(options.party);
      if (options.types?.length) query.type = options.types.join(",");
      const headers: Record<string, string> = { accept: "text/event-stream" };
      if (after !== undefined) headers["last-event-id"] = String(after);
      let response: Response;
      try {
        response = await fetch(`${this.base}/v1/events?${new URLSearchParams(query)}`, {
          headers,
          ...(options.signal ? { signal: options.signal } : {}),
        });
      } catch (err) {
        if (options.signal?.aborted || attempt + 1 >= this.opts.retries) throw err;
        await sleep(this.backoff(attempt, null));
        continue;
      }
      if (!response.ok || !response.body) {
        const error = parseError(response.status, new Uint8Array(await response.arrayBuffer()));
        if (error.code !== "busy" || attempt + 1 >= this.opts.retries) throw error;
        await sleep(this.backoff(attempt, response.headers.get("retry-after")));
        continue;
      }
      try {
        for await (const { data } of sseEvents(response.body)) {
          const event = JSON.parse(data) as CommitEvent;
          after = event.height;
          attempt = 0;
          yield event;
        }
        return; // the server ended the stream (`until` reached)
      } catch (err) {
        if (options.signal?.aborted || attempt + 1 >= this.opts.retries) throw err;
        await sleep(this.backoff(attempt, null));
      }
    }
  }

  /** The committed tx that used a business id (its tx id and receipt), or AlmonerError not_found. */
  async lookup(party: Uint8Array | string, txType: string, businessId: string): Promise<{ tx_id: Uint8Array; receipt: Receipt }> {
    const p = typeof party === "string" ? party : hex(party);
    const path = `/v1/ids/${p}/${txType}/${encodeURIComponent(businessId)}`;
    return (await this.request("GET", path)) as unknown as { tx_id: Uint8Array; receipt: Receipt };
  }

  async trace(platform: Uint8Array | string, donationId: string): Promise<ValueMap> {
    const p = typeof platform === "string" ? platform : hex(platform);
    return (await this.request("GET", `/v1/donations/${p}/${encodeURIComponent(donationId)}/trace`)) as ValueMap;
  }

  /** Check every proof of a trace against its certified head. */
  async verifyTrace(trace: ValueMap, trust: Trust): Promise<void> {
    const head = trace.head as ValueMap;
    const header = await this.certifiedHeader(Number(head.height), trust);
    if (!equalBytes(blockHash(header), head.block_hash as Uint8Array)) throw new ProofError("the trace names another head");
    const proofs = trace.proofs as Record<string, ValueMap>;
    const needed = [(trace.donation as ValueMap).tx_id, ...(trace.hops as ValueMap[]).map((h) => h.tx_id)];
    for (const id of needed as Uint8Array[]) {
      const proof = proofs[hex(id)];
      if (!proof) throw new ProofError(`no proof for tx ${hex(id)}`);
      const ok =
        Number(proof.tree_size) === Number(header.log_size) &&
        verifyInclusion(id, Number(proof.leaf_index), Number(proof.tree_size), proof.path as Uint8Array[], header.log_root as Uint8Array);
      if (!ok) throw new ProofError(`the proof of tx ${hex(id)} does not verify`);
    }
  }
}

/** Parse server-sent events from a byte stream (text/event-stream framing). */
async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<{ id: string; data: string }> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let id = "";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("id:")) id = line.slice(3).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { id, data: data.join("\n") };
    }
  }
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const response = await fetch(url, { headers: { accept: MSGPACK } });
  const raw = new Uint8Array(await response.arrayBuffer());
  if (!response.ok) throw parseError(response.status, raw);
  return raw;
}

function parseError(status: number, raw: Uint8Array): AlmonerError {
  try {
    const body = JSON.parse(new TextDecoder().decode(raw)) as { error?: { code: string; message: string; details: Record<string, unknown> } };
    if (body.error) return new AlmonerError(status, body.error.code, body.error.message, body.error.details ?? {});
  } catch {
    // not a JSON error body: fall through
  }
  return new AlmonerError(status, "http_error", `HTTP ${status}`);
}
