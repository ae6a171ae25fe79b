/**
 * Share tokens made by an independent implementation of the site's format (Python's
 * `cryptography` package, AESGCM; installed by scripts/install-test-deps.sh), not by the server's
 * code: URL-safe base64 of nonce (12) || AES-256-GCM ciphertext || tag (16), key SHA-256(secret),
 * plaintext "<codespace>:<expiry unix s>:<mode>".
 */
import { execFileSync } from "node:child_process";

const PY = `
import sys, os, base64, hashlib
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
secret, plaintext = sys.argv[1], sys.argv[2]
key = hashlib.sha256(secret.encode("utf-8")).digest()
nonce = os.urandom(12)
print(base64.urlsafe_b64encode(nonce + AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), None)).decode())
`;

/** A token for `plaintext` under `secret` (one python3 run). */
export function pythonShareToken(secret: string, plaintext: string): string {
  return execFileSync("python3", ["-c", PY, secret, plaintext], { encoding: "utf8", timeout: 20_000 }).trim();
}
