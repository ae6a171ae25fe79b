/**
 * `node:test` with a timeout on every test and hook, for every test file to import instead of
 * `node:test` (`import { test, describe, before, after } from "./helpers/bounded.js"`).
 *
 * Why: on Node 20, `node --test --test-timeout=N` bounds each test FILE as a whole, not each test,
 * and a `describe`'s `timeout` bounds the whole suite. So a test waiting for a lost broadcast would
 * only fail when its whole file runs out of time. Here each `test()` and each hook gets
 * `DEFAULT_TEST_TIMEOUT_MS` unless it passes its own `{ timeout }` (long tests do); scripts/run-tests.mjs
 * bounds each file on top of that. `describe` is node's own (its `timeout` would bound the suite).
 */
import * as nodeTest from "node:test";
import type { HookOptions, TestOptions } from "node:test";

/** Per-test and per-hook default, milliseconds (`TEST_TIMEOUT_MS` overrides it). */
export const DEFAULT_TEST_TIMEOUT_MS = Number(process.env.TEST_TIMEOUT_MS) || 60_000;

type TestFn = (t: nodeTest.TestContext) => void | Promise<void>;
type HookFn = Parameters<typeof nodeTest.before>[0];

/** `node:test`'s `test(name, [options], fn)` with `{ timeout: DEFAULT_TEST_TIMEOUT_MS }` unless `options.timeout` is given. */
export function test(name: string, fn: TestFn): Promise<void>;
export function test(name: string, options: TestOptions, fn: TestFn): Promise<void>;
export function test(name: string, a: TestOptions | TestFn, b?: TestFn): Promise<void> {
  const [options, fn] = typeof a === "function" ? [{}, a] : [a, b!];
  return nodeTest.test(name, { timeout: DEFAULT_TEST_TIMEOUT_MS, ...options }, fn);
}

const hook =
  (register: typeof nodeTest.before) =>
  (fn: HookFn, options: HookOptions = {}): void =>
    register(fn, { timeout: DEFAULT_TEST_TIMEOUT_MS, ...options });

export const before = hook(nodeTest.before);
export const after = hook(nodeTest.after);
export const beforeEach = hook(nodeTest.beforeEach);
export const afterEach = hook(nodeTest.afterEach);
export const describe = nodeTest.describe;
