/**
 * Key files (docs/spec/02-keys-and-signing.md, "Key files"): the JSON a node's `almoner
 * keygen` writes, so a platform can use the same key from Python, the CLI and JavaScript.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";

import { secretbox } from "@noble/ciphers/salsa.js";
import { argon2id } from "@noble/hashes/argon2.js";

import { fromHex, hex } from "./codec.js";
import { KeyPair } from "./crypto.js";

export class KeyFileError extends Error {
  override name = "KeyFileError";
}

export interface KeyFileDocument {
  type: "ed25519";
  public_key: string;
  secret_key?: string;
  kdf?: string;
  salt?: string;
  opslimit?: number;
  memlimit?: number;
  nonce?: string;
  ciphertext?: string;
}

/** The seed of a sealed key file: Argon2id (libsodium's crypto_pwhash) then secretbox. */
function unseal(doc: KeyFileDocument, passphrase: string): Uint8Array {
  const { salt, nonce, ciphertext, opslimit, memlimit } = doc;
  if (!salt || !nonce || !ciphertext || !Number.isSafeInteger(opslimit) || !Number.isSafeInteger(memlimit)) {
    throw new KeyFileError("the sealed key file lacks salt, nonce, ciphertext, opslimit or memlimit");
  }
  const key = argon2id(new TextEncoder().encode(passphrase), fromHex(salt, 16), {
    t: opslimit as number,
    m: Math.floor((memlimit as number) / 1024),
    p: 1,
    dkLen: 32,
  });
  try {
    return secretbox(key, fromHex(nonce, 24)).open(fromHex(ciphertext));
  } catch {
    throw new KeyFileError("wrong passphrase for this key file");
  }
}

/** The unencrypted key file document of a key. */
export function keyFileDocument(key: KeyPair): KeyFileDocument {
  return { type: "ed25519", public_key: hex(key.publicKey), secret_key: hex(key.seed) };
}

/** Parse a key file document; refuses a file whose public key does not match its seed. */
export function parseKeyFile(doc: unknown, passphrase?: string): KeyPair {
  if (typeof doc !== "object" || doc === null || (doc as KeyFileDocument).type !== "ed25519") {
    throw new KeyFileError("not an ed25519 key file");
  }
  const sealed = doc as KeyFileDocument;
  const { public_key: pub, secret_key: secret, kdf } = sealed;
  let seed: Uint8Array;
  if (secret !== undefined) {
    try {
      seed = fromHex(secret, 32);
    } catch {
      throw new KeyFileError("secret_key is not 64 hex characters");
    }
  } else if (kdf === "argon2id") {
    if (passphrase === undefined) throw new KeyFileError("this key file is encrypted; a passphrase is required");
    seed = unseal(sealed, passphrase);
  } else {
    throw new KeyFileError("the key file has neither a secret_key nor an argon2id seal");
  }
  if (seed.length !== 32) throw new KeyFileError("the sealed seed is not 32 bytes");
  const key = KeyPair.fromSeed(seed);
  if (typeof pub !== "string" || pub !== hex(key.publicKey)) {
    throw new KeyFileError("public_key does not match the secret key");
  }
  return key;
}

/** Load a key file, refusing one that other users can read (mode must be 0600 or tighter). */
export function loadKeyFile(path: string, passphrase?: string): KeyPair {
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) {
    throw new KeyFileError(`key file ${path} is readable by other users (mode ${mode.toString(8)}); run: chmod 600 ${path}`);
  }
  return parseKeyFile(JSON.parse(readFileSync(path, "utf8")), passphrase);
}

/** Write a new key file with mode 0600; never overwrites an existing file. */
export function writeKeyFile(path: string, key: KeyPair): void {
  writeFileSync(path, JSON.stringify(keyFileDocument(key), null, 2) + "\n", { mode: 0o600, flag: "wx" });
}
