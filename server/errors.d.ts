/**
 * The server's error classes: one class per wire error code (ioredis style). The codes and the wire
 * shape `{ code, message }` are the protocol's (protocol/errors.ts), shared with clients.
 */
import { ErrorCodes, type ErrorCode, type WireError } from "../protocol/errors.js";
export { ErrorCodes, type ErrorCode, type WireError };
/** Base class: every error the server reports to a client carries a stable `code`. */
export declare class CodespaceError extends Error {
    readonly code: ErrorCode;
    constructor(code: ErrorCode, message: string);
    toWire(): WireError;
}
export declare class MissingTokenError extends CodespaceError {
    constructor(message?: string);
}
export declare class InvalidTokenError extends CodespaceError {
    constructor(message?: string);
}
export declare class AuthUnavailableError extends CodespaceError {
    constructor(message?: string);
}
export declare class InvalidPayloadError extends CodespaceError {
    constructor(message: string);
}
export declare class ForbiddenError extends CodespaceError {
    constructor(message?: string);
}
export declare class InvalidVersionError extends CodespaceError {
    constructor(message: string);
}
export declare class VersionTooOldError extends CodespaceError {
    constructor(message?: string);
}
export declare class DocTooLargeError extends CodespaceError {
    constructor(limit: number);
}
export declare class StoreUnavailableError extends CodespaceError {
    constructor(message?: string);
}
export declare class ShuttingDownError extends CodespaceError {
    constructor(message?: string);
}
export declare class InternalError extends CodespaceError {
    constructor(message?: string);
}
export declare class RateLimitedError extends CodespaceError {
    constructor(message?: string);
}
export declare class TooManyConnectionsError extends CodespaceError {
    constructor(limit: number);
}
export declare class MessageTooLargeError extends CodespaceError {
    constructor(bytes: number, limit: number);
}
/** One class per code (ioredis style); `toCodespaceError` maps anything else to `internal_error`. */
export declare const ErrorClasses: {
    readonly missing_token: typeof MissingTokenError;
    readonly invalid_token: typeof InvalidTokenError;
    readonly auth_unavailable: typeof AuthUnavailableError;
    readonly invalid_payload: typeof InvalidPayloadError;
    readonly forbidden: typeof ForbiddenError;
    readonly invalid_version: typeof InvalidVersionError;
    readonly version_too_old: typeof VersionTooOldError;
    readonly doc_too_large: typeof DocTooLargeError;
    readonly store_unavailable: typeof StoreUnavailableError;
    readonly shutting_down: typeof ShuttingDownError;
    readonly internal_error: typeof InternalError;
    readonly rate_limited: typeof RateLimitedError;
    readonly too_many_connections: typeof TooManyConnectionsError;
    readonly message_too_large: typeof MessageTooLargeError;
};
/** Normalizes any thrown value into a CodespaceError (unknown faults become `internal_error`). */
export declare function toCodespaceError(err: unknown): CodespaceError;
