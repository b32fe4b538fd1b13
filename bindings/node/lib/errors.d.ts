/** A failed libwarden call: `code` is the negative WARDEN_E* value, `codeName` e.g. "WARDEN_EDATA". */
export class WardenError extends Error {
  constructor(message: string, code?: number, codeName?: string);
  readonly code: number;
  readonly codeName: string;
}
/** WARDEN_EINVAL: a bad argument or usage. */
export class InvalidInput extends WardenError {}
/** WARDEN_EDATA: invalid input data (a bad document, vector or filter); also an InvalidInput. */
export class InvalidData extends InvalidInput {}
/** WARDEN_ENOTFOUND: no such document or principal. */
export class NotFound extends WardenError {}
/** WARDEN_EIO: an I/O or storage error (or the audit line could not be written). */
export class StorageError extends WardenError {}
/** WARDEN_ENOMEM */
export class OutOfMemory extends WardenError {}
/** WARDEN_ECORRUPT: stored data or an index file is damaged (queries fail closed). */
export class Corrupt extends WardenError {}
/** WARDEN_ECONFIG: warden.yaml is invalid. */
export class ConfigError extends WardenError {}
/** WARDEN_ESTALE: the snapshot is older than minRevision. */
export class StaleSnapshot extends WardenError {}
/** WARDEN_EEXIST: a collection already exists there. */
export class AlreadyExists extends WardenError {}
/** WARDEN_EFORK: a handle used in a child after fork(). */
export class UsedAfterFork extends WardenError {}
/** WARDEN_ERESOLVER: the resolver could not be started or configured. */
export class ResolverError extends WardenError {}
/** WARDEN_EINTERNAL: an invariant broke (a bug). */
export class InternalError extends WardenError {}
export const CODES: Record<number, [string, typeof WardenError]>;
export function fromCode(code: number, message?: string): WardenError;
