/** Almoner client SDK: see README.md and docs/platforms.md of the repository. */
export * from "./codec.js";
export * from "./crypto.js";
export * from "./keys.js";
export * from "./tx.js";
export * from "./merkle.js";
export * from "./certificate.js";
export * from "./client.js";
