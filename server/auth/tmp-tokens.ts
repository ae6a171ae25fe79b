/**
 * Built-in authenticate hook for temporary codespaces: a `tmp-<id>` token (1 to 64 of
 * `A-Z a-z 0-9 _ -`) names its own codespace, mode `edit`, no API call. Other tokens pass on.
 * @throws InvalidTokenError for a malformed `tmp-` token
 */
import { TMP_TOKEN_PATTERN, TMP_TOKEN_PREFIX } from "../../protocol/constants.js";
import { InvalidTokenError } from "../errors.js";
import type { AuthenticateHook } from "../hooks.js";
import type { AuthCounter } from "./authenticate.js";

export function tmpTokens(count: AuthCounter = () => {}): AuthenticateHook {
  return ({ token }) => {
    if (!token.startsWith(TMP_TOKEN_PREFIX)) return undefined;
    if (!TMP_TOKEN_PATTERN.test(token)) {
      count("invalid_token");
      throw new InvalidTokenError("a tmp- token is tmp- followed by 1 to 64 of A-Z a-z 0-9 _ -");
    }
    count("tmp");
    return { codespace: token, mode: "edit" };
  };
}
