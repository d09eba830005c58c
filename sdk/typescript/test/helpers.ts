import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { fromHex, type Value, type ValueMap } from "../src/index.js";

/** The repository root: this file runs from sdk/typescript/dist/test/. */
export const REPO = process.env.ALMONER_REPO ?? resolve(fileURLToPath(import.meta.url), "../../../../..");

export function vectors(name: string): Record<string, any> {
  return JSON.parse(readFileSync(resolve(REPO, "docs/spec/vectors", name), "utf8"));
}

/** The typed notation of docs/spec/09-vectors.md → a protocol value. */
export function untyped(node: any): Value {
  if (node === null || typeof node === "boolean") return node;
  const [kind, inner] = Object.entries(node)[0] as [string, any];
  switch (kind) {
    case "int": {
      const big = BigInt(inner);
      return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    }
    case "str":
      return inner as string;
    case "bin":
      return fromHex(inner);
    case "array":
      return (inner as any[]).map(untyped);
    case "map": {
      const out: ValueMap = {};
      for (const [k, v] of inner as [string, any][]) out[k] = untyped(v);
      return out;
    }
    default:
      throw new Error(`unknown typed kind ${kind}`);
  }
}
