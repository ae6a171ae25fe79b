/**
 * Configuration: environment variables -> typed, validated (joi), frozen config.
 *
 * The variables are declared once, in server/config/variables.ts (name, joi schema, default, unit,
 * meaning); this file turns those declarations into the `Config` type and `loadConfig`. To add a
 * variable, add one entry there (its comment says how) and run `npm run docs:config`.
 */
import { VARIABLES } from "./config/variables.js";
import type { Variable, VariableValue } from "./config/variable.js";

/** The configuration the server reads, one field per entry of `VARIABLES` (see there for units and defaults). */
export type Config = { readonly [K in keyof typeof VARIABLES]: VariableValue<(typeof VARIABLES)[K]> };

/** Every environment variable the server reads, in declaration order. */
export const CONFIG_ENV_NAMES: readonly string[] = Object.freeze(Object.values(VARIABLES).map((v) => v.env));

/** Raised by `loadConfig`; `message` is one line naming the variable: `invalid <ENV>: <why>`. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const MAX_ECHO = 80;

/**
 * Reads, validates and freezes the configuration.
 * @param env variables to read (default `process.env`); an empty string counts as unset; names not
 *   declared in `VARIABLES` are ignored.
 * @throws ConfigError with one line naming the offending variable (the first bad one, in declaration order).
 */
export function loadConfig(env: NodeJS.ProcessEnv | Record<string, string | undefined> = process.env): Config {
  const config: Record<string, unknown> = {};
  for (const [field, v] of Object.entries(VARIABLES) as [string, Variable<unknown>][]) {
    // surrounding blanks are a copy-paste slip (HOST="127.0.0.1 "), except in secrets, taken as given
    const given = env[v.env];
    const raw = v.secret ? given : given?.trim();
    let value: unknown;
    if (raw === undefined || raw === "") {
      value = v.defaultValue();
    } else {
      const result = v.schema.validate(raw, { convert: true, errors: { label: false } });
      if (result.error) throw new ConfigError(`invalid ${v.env}${echo(v, raw)}: ${result.error.message}`);
      value = result.value;
    }
    try {
      config[field] = v.parse(value);
    } catch (err) {
      throw new ConfigError(`invalid ${v.env}${echo(v, String(raw))}: ${(err as Error).message}`);
    }
  }
  const frozen = Object.freeze(config) as Config;
  checkConfig(frozen);
  return frozen;
}

/**
 * The checks across variables, made once by loadConfig and again by createServer for a Config an
 * embedding program built itself.
 * @throws ConfigError naming the variable: REDIS_URL with REDIS_CLUSTER_NODES; SAVE_URL without
 *   SAVE_SECRET; SAVE_MAX_WAIT_MS below SAVE_DEBOUNCE_MS; SAVE_LEASE_MS not above SAVE_TIMEOUT_MS.
 */
export function checkConfig(config: Config): void {
  if (config.redisUrl !== undefined && config.redisClusterNodes !== undefined) {
    throw new ConfigError("invalid REDIS_CLUSTER_NODES: set either REDIS_URL (one Redis) or REDIS_CLUSTER_NODES (a Redis Cluster), not both");
  }
  if (config.saveUrl && !config.saveSecret) throw new ConfigError("invalid SAVE_SECRET: required with SAVE_URL");
  if (config.saveMaxWaitMs < config.saveDebounceMs) throw new ConfigError("invalid SAVE_MAX_WAIT_MS: must be at least SAVE_DEBOUNCE_MS");
  if (config.saveLeaseMs <= config.saveTimeoutMs) throw new ConfigError("invalid SAVE_LEASE_MS: must be more than SAVE_TIMEOUT_MS");
}

function echo(v: Variable<unknown>, raw: string): string {
  if (v.secret) return "";
  const shown = raw.length > MAX_ECHO ? `${raw.slice(0, MAX_ECHO)}…` : raw;
  return `=${JSON.stringify(shown)}`;
}
