/**
 * One configuration variable, declared once (server/config/variables.ts): its environment name, its
 * joi schema, its default, its unit and what it means. From that one declaration come the `Config`
 * field's TypeScript type, the default, the validation, the one-line message for a bad value and the
 * row of the configuration tables in README.md and docs/operations.md.
 */
import type Joi from "joi";

interface Common<T, R> {
  /** Environment variable read (an empty value counts as unset). */
  readonly env: string;
  /** joi schema of the value; strings are converted (`"42"` -> 42). Put no `.default()` here. */
  readonly schema: Joi.AnySchema<T>;
  /** Unit for the tables (`ms`, `s`, `bytes`, `UTF-16 code units`, ...); empty when there is none. */
  readonly unit: string;
  /** What it means, one line of Markdown (both tables). */
  readonly doc: string;
  /** More for operators, Markdown appended to `doc` in docs/operations.md only. */
  readonly details?: string;
  /** The default as the tables show it; derived from `default` when omitted (`unset` without one). */
  readonly defaultText?: string;
  /** The value is never echoed in error messages (URLs may carry credentials). */
  readonly secret?: boolean;
  /**
   * Checks joi cannot express and the conversion to the `Config` field (default: the value as is).
   * Throw an Error whose message completes "invalid <ENV>: ..." to refuse the value.
   */
  readonly parse?: (value: T) => R;
}

/** A declaration, as `variable()` / `optional()` return it; `V` is the `Config` field's type. */
export interface Variable<V> {
  readonly env: string;
  readonly schema: Joi.AnySchema;
  readonly unit: string;
  readonly doc: string;
  readonly details: string | undefined;
  readonly defaultText: string;
  readonly secret: boolean;
  /** The default (computed now if it is a function), or undefined for an optional variable. */
  defaultValue(): unknown;
  /** Validated joi output -> `Config` field. */
  parse(value: unknown): V;
}

/** The `Config` field type of a declaration. */
export type VariableValue<D> = D extends Variable<infer V> ? V : never;

function make<T, R>(spec: Common<T, R>, defaultValue: () => unknown, derivedText: string): Variable<R> {
  return Object.freeze({
    env: spec.env,
    schema: spec.schema,
    unit: spec.unit,
    doc: spec.doc,
    details: spec.details,
    defaultText: spec.defaultText ?? derivedText,
    secret: spec.secret ?? false,
    defaultValue,
    parse: (value: unknown) => (spec.parse ? spec.parse(value as T) : (value as R)),
  });
}

/** A variable with a default (a value, or a function computed at load time: then give `defaultText`). */
export function variable<T, R = T>(spec: Common<T, R> & { readonly default: T | (() => T) }): Variable<R> {
  const d = spec.default;
  const text = typeof d === "function" ? "computed" : d === "" ? "empty" : `\`${String(d)}\``;
  return make(spec, () => (typeof d === "function" ? (d as () => T)() : d), text);
}

/** A variable without a default: unset gives `undefined`. */
export function optional<T, R = T>(spec: Common<T, R>): Variable<R | undefined> {
  const v = make(spec, () => undefined, "unset");
  return Object.freeze({ ...v, parse: (value: unknown) => (value === undefined ? undefined : v.parse(value)) });
}
