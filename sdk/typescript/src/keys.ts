/**
 * Key files (docs/spec/02-keys-and-signing.md, "Key files"): the JSON a node's `almoner
 * keygen` writes, so a platform can use the same key from Python, the CLI and JavaScript.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";

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
}

/** The unencrypted key file document of a key. */
export function keyFileDocument(key: KeyPair): KeyFileDocument {
  return { type: "ed25519", public_key: hex(key.publicKey), secret_key: hex(key.seed) };
}

/** Parse a key file document; refuses a file whose public key does not match its seed. */
export function parseKeyFile(doc: unknown): KeyPair {
  if (typeof doc !== "object" || doc === null || (doc as KeyFileDocument).type !== "ed25519") {
    throw new KeyFileError("not an ed25519 key file");
  }
  const { public_key: pub, secret_key: secret, kdf } = doc as KeyFileDocument;
  if (secret === undefined) {
    throw new KeyFileError(
      kdf === "argon2id"
        ? "this key file is encrypted; decrypt it with `almoner keygen` tooling first"
        : "the key file has no secret_key",
    );
  }
  let key: KeyPair;
  try {
    key = KeyPair.fromSeed(fromHex(secret, 32));
  } catch {
    throw new KeyFileError("secret_key is not 64 hex characters");
  }
  if (typeof pub !== "string" || pub !== hex(key.publicKey)) {
    throw new KeyFileError("public_key does not match the secret key");
  }
  return key;
}

/** Load a key file, refusing one that other users can read (mode must be 0600 or tighter). */
export function loadKeyFile(path: string): KeyPair {
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) {
    throw new KeyFileError(`key file ${path} is readable by other users (mode ${mode.toString(8)}); run: chmod 600 ${path}`);
  }
  return parseKeyFile(JSON.parse(readFileSync(path, "utf8")));
}

/** Write a new key file with mode 0600; never overwrites an existing file. */
export function writeKeyFile(path: string, key: KeyPair): void {
  writeFileSync(path, JSON.stringify(keyFileDocument(key), null, 2) + "\n", { mode: 0o600, flag: "wx" });
}
