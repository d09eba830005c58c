/**
 * The SDK against a real node: a one-validator devnet started by this test (the Python
 * node from this repository, LevelDB and all), driven over HTTP only.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";

import {
  AlmonerError,
  buildTx,
  Client,
  encode,
  fromHex,
  H,
  hex,
  loadKeyFile,
  type KeyPair,
  type Receipt,
  type Trust,
} from "../src/index.js";
import { REPO } from "./helpers.js";

const PYTHON = process.env.ALMONER_PYTHON ?? resolve(REPO, ".venv/bin/python");
let dir = "";
let devnet: ChildProcess | undefined;
let client: Client;
let url = "";
let trust: Trust;
let platform: KeyPair;
let charity: KeyPair;
let chainId = "";

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => ok(port));
    });
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 60000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const found = await probe();
      if (found !== undefined) return found;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The genesis hash as a regulator pins it: H(canonical(document with pubkeys as bin)). */
function genesisHash(doc: any): Uint8Array {
  const map = {
    ...doc,
    validators: doc.validators.map((v: any) => ({ ...v, pubkey: fromHex(v.pubkey) })),
    parties: doc.parties.map((p: any) => ({ ...p, pubkey: fromHex(p.pubkey) })),
  };
  return H(encode(map));
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "almoner-sdk-"));
  const port = await freePort();
  devnet = spawn(PYTHON, ["-m", "almoner.cli", "devnet", "--nodes", "1", "--no-demo", "--dir", dir, "--base-port", String(port)], {
    stdio: ["ignore", "ignore", "pipe"],
    cwd: REPO,
  });
  let stderr = "";
  devnet.stderr?.on("data", (d) => (stderr += String(d)));
  await until("urls.json", async () => (existsSync(join(dir, "urls.json")) ? true : undefined)).catch((e) => {
    throw new Error(`${e.message}; devnet stderr: ${stderr}`);
  });
  url = Object.values(JSON.parse(readFileSync(join(dir, "urls.json"), "utf8")) as Record<string, string>)[0] as string;
  await until("readyz", async () => ((await fetch(`${url}/readyz`)).ok ? true : undefined));
  const genesis = JSON.parse(readFileSync(join(dir, "genesis.json"), "utf8"));
  chainId = genesis.chain_id;
  client = new Client(url);
  trust = await client.trust(genesisHash(genesis));
  platform = loadKeyFile(join(dir, "keys/platform-1.key"));
  charity = loadKeyFile(join(dir, "keys/charity-1.key"));
});

after(async () => {
  if (devnet && devnet.exitCode === null) {
    const exited = new Promise((r) => devnet?.once("exit", r));
    devnet.kill("SIGINT");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15000))]);
    if (devnet.exitCode === null) devnet.kill("SIGKILL");
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function donation(id: string, amount: number) {
  return buildTx(chainId, "donation.record", platform, {
    donation: id,
    donor: H(new TextEncoder().encode(`donor of ${id}`)),
    charity: charity.publicKey,
    campaign: null,
    amount,
    currency: "CNY",
    received_at: Date.now(),
  });
}

test("a signed donation commits and its receipt verifies against the pinned genesis", async () => {
  assert.equal(trust.chainId, chainId);
  const signed = donation("SDK-1", 12_345);
  const receipt = (await client.submit(signed, { wait: true })) as Receipt;
  assert.equal(receipt.status, "committed");
  assert.equal(hex(receipt.tx_id), signed.idHex);
  await client.verifyReceipt(receipt, trust);

  // Resubmitting the same bytes is idempotent: the receipt again, no error.
  const again = (await client.submit(signed)) as Receipt;
  assert.equal(again.status, "committed");

  // A forged receipt (another tx id) does not verify.
  const forged = { ...receipt, tx_id: H(new Uint8Array([1])) };
  await assert.rejects(client.verifyReceipt(forged, trust), /inclusion proof/);
});

test("the same business id with a new nonce is duplicate_id naming the first tx", async () => {
  const first = donation("SDK-2", 500);
  await client.submit(first, { wait: true });
  const second = donation("SDK-2", 500);
  const found = await client.lookup(platform.publicKey, "donation.record", "SDK-2");
  assert.equal(hex(found.tx_id), first.idHex);
  await client.verifyReceipt(found.receipt, trust);
  await assert.rejects(client.submit(second), (err: unknown) => {
    assert.ok(err instanceof AlmonerError);
    assert.equal(err.status, 409);
    assert.equal(err.code, "duplicate_id");
    assert.equal(err.details.tx_id, first.idHex);
    return true;
  });
});

test("a batch is judged per tx; accepted txs commit; the trace's proofs verify", async () => {
  const good = [donation("SDK-3", 100), donation("SDK-4", 200)];
  const bad = buildTx(chainId, "donation.confirm", platform, { platform: platform.publicKey, donation: "SDK-3" });
  const results = await client.submitAndWait([good[0]!, bad, good[1]!]);
  assert.equal((results[0] as Receipt).status, "committed");
  assert.equal((results[1] as { status: string; error: { code: string } }).error.code, "role_not_allowed");
  assert.equal((results[2] as Receipt).status, "committed");
  const confirm = buildTx(chainId, "donation.confirm", charity, { platform: platform.publicKey, donation: "SDK-3" });
  await client.submit(confirm, { wait: true });
  const trace = await client.trace(platform.publicKey, "SDK-3");
  assert.equal((trace.donation as any).confirmed, true);
  await client.verifyTrace(trace, trust);
});

test("JSON sent where msgpack is expected is refused with a clear error", async () => {
  const response = await fetch(`${url}/v1/txs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ chain: chainId, type: "donation.record" }),
  });
  assert.equal(response.status, 400);
  const body = (await response.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, "malformed");
  assert.match(body.error.message, /msgpack/i);
});

test("commit events: replay from a height, filtered to the platform, then resume", async () => {
  const signed = donation("SDK-EV", 42);
  const receipt = (await client.submit(signed, { wait: true })) as Receipt;
  const seen: string[] = [];
  let lastHeight = 0;
  for await (const event of client.events({ from: 1, until: receipt.height, party: platform.publicKey, types: ["donation.record"] })) {
    for (const tx of event.txs) {
      assert.equal(tx.type, "donation.record");
      seen.push(tx.tx_id);
    }
    lastHeight = event.height;
  }
  assert.ok(seen.includes(signed.idHex));
  assert.equal(lastHeight, receipt.height);
  // Resuming after the last height yields nothing older.
  const later = donation("SDK-EV2", 43);
  const next = (await client.submit(later, { wait: true })) as Receipt;
  const resumed: number[] = [];
  for await (const event of client.events({ after: lastHeight, until: next.height, party: platform.publicKey })) {
    resumed.push(event.height);
  }
  assert.ok(resumed.every((h) => h > lastHeight));
  assert.ok(resumed.includes(next.height));
});
