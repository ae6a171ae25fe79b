/**
 * The built-in hooks chosen from the config, in the shape a site would pass to `createServer`:
 * authenticate hooks tried in order (tmp- tokens; local share tokens with SHARE_TOKEN_SECRET; the
 * site API check with API_BASE_URL) and, with SAVE_URL, the HTTP save/load sink.
 */
import type { Config } from "./config.js";
import type { AuthenticateHook, Hooks } from "./hooks.js";
import type { Logger } from "./logger.js";
import type { AuthCounter } from "./auth/authenticate.js";
import type { AuthOutcome } from "./metrics.js";
import { tmpTokens } from "./auth/tmp-tokens.js";
import { shareTokens } from "./auth/share-tokens.js";
import { siteApi } from "./auth/site-api.js";
import { httpSink } from "./persistence/http-sink.js";

export interface BuiltinHooks {
  hooks: Hooks;
  /** Built-in authenticate hooks bounding themselves (not wrapped in HOOK_TIMEOUT_MS). */
  selfBounded: ReadonlySet<AuthenticateHook>;
}

export interface BuiltinDeps {
  logger: Logger;
  count: AuthCounter;
  countCall: (outcome: AuthOutcome) => void;
}

export function builtinHooks(config: Config, deps: BuiltinDeps): BuiltinHooks {
  const authenticate: AuthenticateHook[] = [tmpTokens(deps.count)];
  if (config.shareTokenSecret) authenticate.push(shareTokens({ secret: config.shareTokenSecret }, deps.count));
  const selfBounded = new Set<AuthenticateHook>(authenticate);
  if (config.apiBaseUrl) {
    const api = siteApi({ ...config, apiBaseUrl: config.apiBaseUrl }, deps);
    authenticate.push(api);
    selfBounded.add(api);
  }
  const sink = config.saveUrl && config.saveSecret ? httpSink({ url: config.saveUrl, secret: config.saveSecret, maxDocLength: config.maxDocLength }) : {};
  return { hooks: { authenticate, ...sink }, selfBounded };
}
