"""Typed exceptions for the WARDEN_E* codes of engine/warden.h.

Every exception raised by the library layer is a subclass of warden.Error
and carries ``code`` (the negative WARDEN_E* value), ``name`` (e.g.
"WARDEN_EDATA") and ``message`` (warden_errmsg(), the library's detailed
message of the failed call).
"""
from __future__ import annotations


class Error(Exception):
    """A libwarden call failed.  ``code``, ``name`` and ``message`` say how."""

    code: int = 0

    def __init__(self, message: str, code: int | None = None, name: str = ""):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.name = name
        self.message = message

    def __reduce__(self):  # keep code and name across pickling (Dask)
        return (self.__class__, (self.message, self.code, self.name))


class InvalidInput(Error, ValueError):
    """WARDEN_EINVAL: a bad argument or usage (CLI exit 2)."""
    code = -30900


class InvalidData(InvalidInput):
    """WARDEN_EDATA: invalid input data (CLI exit 3): a bad document,
    vector or filter.  Also an InvalidInput, so one except clause catches
    both kinds of bad input."""
    code = -30901


class NotFound(Error, LookupError):
    """WARDEN_ENOTFOUND: no such document or principal."""
    code = -30902


class StorageError(Error):
    """WARDEN_EIO: an I/O or LMDB error (CLI exit 1)."""
    code = -30903


class OutOfMemory(Error, MemoryError):
    """WARDEN_ENOMEM: an allocation failed."""
    code = -30904


class Corrupt(Error):
    """WARDEN_ECORRUPT: stored data or an index file is damaged."""
    code = -30905


class ConfigError(Error):
    """WARDEN_ECONFIG: warden.yaml is invalid."""
    code = -30906


class StaleSnapshot(Error):
    """WARDEN_ESTALE: the snapshot is older than the min_revision asked for."""
    code = -30907


class AlreadyExists(Error, FileExistsError):
    """WARDEN_EEXIST: the directory already holds a collection."""
    code = -30908


class UsedAfterFork(Error):
    """WARDEN_EFORK: a handle opened before fork() was used in the child."""
    code = -30909


class ResolverError(Error):
    """WARDEN_ERESOLVER: the resolver could not be started or configured."""
    code = -30910


class InternalError(Error):
    """WARDEN_EINTERNAL: an invariant broke inside libwarden (a bug)."""
    code = -30911


BY_CODE = {c.code: c for c in (InvalidInput, InvalidData, NotFound, StorageError,
                               OutOfMemory, Corrupt, ConfigError, StaleSnapshot,
                               AlreadyExists, UsedAfterFork, ResolverError,
                               InternalError)}


def from_code(code: int, message: str, strerror: str = "") -> Error:
    """The exception for a WARDEN_E* code (warden.Error for an unknown one)."""
    name = strerror.split(":", 1)[0] if strerror else ""
    cls = BY_CODE.get(code, Error)
    msg = message or strerror or f"warden error {code}"
    e = cls(msg, code, name)
    return e
