// errors.js -- typed errors for the WARDEN_E* codes of engine/warden.h.
// Every error the package raises for a failed libwarden call is a
// WardenError carrying `code` (the negative WARDEN_E* value), `name`-like
// `codeName` (e.g. "WARDEN_EDATA") and the library's detailed message.
// The class names follow the Python package (bindings/python).

export class WardenError extends Error {
  constructor(message, code = 0, codeName = '') {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.codeName = codeName;
  }
}
/** WARDEN_EINVAL: a bad argument or usage. */
export class InvalidInput extends WardenError {}
/** WARDEN_EDATA: invalid input data (a bad document, vector or filter); also an InvalidInput. */
export class InvalidData extends InvalidInput {}
/** WARDEN_ENOTFOUND: no such document or principal. */
export class NotFound extends WardenError {}
/** WARDEN_EIO: an I/O or storage error (or the audit line could not be written). */
export class StorageError extends WardenError {}
/** WARDEN_ENOMEM: an allocation failed. */
export class OutOfMemory extends WardenError {}
/** WARDEN_ECORRUPT: stored data or an index file is damaged (queries fail closed). */
export class Corrupt extends WardenError {}
/** WARDEN_ECONFIG: warden.yaml is invalid. */
export class ConfigError extends WardenError {}
/** WARDEN_ESTALE: the snapshot is older than the minRevision asked for. */
export class StaleSnapshot extends WardenError {}
/** WARDEN_EEXIST: a collection already exists there. */
export class AlreadyExists extends WardenError {}
/** WARDEN_EFORK: a handle used in a child after fork(). */
export class UsedAfterFork extends WardenError {}
/** WARDEN_ERESOLVER: the resolver could not be started or configured. */
export class ResolverError extends WardenError {}
/** WARDEN_EINTERNAL: an invariant broke (a bug). */
export class InternalError extends WardenError {}

export const CODES = {
  [-30900]: ['WARDEN_EINVAL', InvalidInput],
  [-30901]: ['WARDEN_EDATA', InvalidData],
  [-30902]: ['WARDEN_ENOTFOUND', NotFound],
  [-30903]: ['WARDEN_EIO', StorageError],
  [-30904]: ['WARDEN_ENOMEM', OutOfMemory],
  [-30905]: ['WARDEN_ECORRUPT', Corrupt],
  [-30906]: ['WARDEN_ECONFIG', ConfigError],
  [-30907]: ['WARDEN_ESTALE', StaleSnapshot],
  [-30908]: ['WARDEN_EEXIST', AlreadyExists],
  [-30909]: ['WARDEN_EFORK', UsedAfterFork],
  [-30910]: ['WARDEN_ERESOLVER', ResolverError],
  [-30911]: ['WARDEN_EINTERNAL', InternalError],
};

/** The typed error for a WARDEN_E* code and message. */
export function fromCode(code, message) {
  const [codeName, Cls] = CODES[code] ?? ['WARDEN_EUNKNOWN', WardenError];
  return new Cls(message || codeName, code, codeName);
}

export const invalid = (msg) => new InvalidInput(msg, -30900, 'WARDEN_EINVAL');
export const invalidData = (msg) => new InvalidData(msg, -30901, 'WARDEN_EDATA');
