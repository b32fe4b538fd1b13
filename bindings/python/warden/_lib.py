"""The ctypes door to libwarden.so: locating the library, the struct
layouts of engine/warden.h (laid out by hand; warden.h fixes them) and the
function prototypes.

ctypes.CDLL releases the GIL around every foreign call, so queries and
writes made from several Python threads run in parallel in C; a resolver
callback re-acquires the GIL only while the Python function runs.

Library search order (the first that exists wins):
  1. $WARDEN_LIBRARY (a path to libwarden.so);
  2. the path recorded at install time in warden/_build_info.py
     (the repository's build/libwarden.so the package was built with);
  3. build/libwarden.so of a repository that contains this package
     (running from a source tree: bindings/python/warden -> ../../../build);
  4. libwarden.so next to this file;
  5. the system loader's search path (ctypes.util.find_library("warden")).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_double,
                    c_float, c_int, c_int64, c_size_t, c_ubyte, c_uint,
                    c_uint32, c_uint64, c_void_p)

c_char_pp = POINTER(c_char_p)

# ------------------------------------------------------------- structs


class CreateOpts(Structure):
    _fields_ = [("dim", c_uint), ("metric", c_char_p), ("config_path", c_char_p)]


class OpenOpts(Structure):
    _fields_ = [("read_only", c_int)]


class IngestOpts(Structure):
    _fields_ = [("keep_going", c_int), ("progress", c_void_p),
                ("progress_ctx", c_void_p)]


class IngestReport(Structure):
    _fields_ = [("documents", c_uint64), ("replaced", c_uint64),
                ("chunks", c_uint64), ("bad_lines", c_uint64),
                ("revision", c_uint64), ("errors", c_void_p)]


META_STRING, META_INT, META_FLOAT, META_BOOL, META_STRING_LIST = 1, 2, 3, 4, 5


class Meta(Structure):
    _fields_ = [("key", c_char_p), ("type", c_int), ("str", c_char_p),
                ("i", c_int64), ("f", c_double), ("list", c_char_pp),
                ("nlist", c_size_t)]


class Doc(Structure):
    _fields_ = [("doc_id", c_char_p), ("source", c_char_p),
                ("namespace_", c_char_p), ("metadata", POINTER(Meta)),
                ("nmetadata", c_size_t), ("has_acl", c_int),
                ("allow", c_char_pp), ("nallow", c_size_t),
                ("deny", c_char_pp), ("ndeny", c_size_t),
                ("texts", c_char_pp), ("nchunks", c_size_t)]


class UpsertOpts(Structure):
    _fields_ = [("keep_going", c_int), ("progress", c_void_p),
                ("progress_ctx", c_void_p)]


class WriteReport(Structure):
    _fields_ = [("changed", c_uint64), ("unchanged", c_uint64),
                ("unknown", c_uint64), ("revision", c_uint64)]


class QueryOpts(Structure):
    _fields_ = [("principal", c_char_p), ("groups", c_char_pp),
                ("ngroups", c_size_t), ("namespaces", c_char_pp),
                ("nnamespaces", c_size_t), ("filter", c_char_p),
                ("k", c_uint), ("strategy", c_int),
                ("min_revision", c_uint64), ("explain", c_int),
                ("agent", c_char_p), ("agent_groups", c_char_pp),
                ("nagent_groups", c_size_t), ("target_recall", c_float),
                ("mode", c_int), ("text", c_char_p)]


class HitStruct(Structure):
    _fields_ = [("doc_id", c_char_p), ("chunk", c_uint32), ("score", c_float),
                ("text", c_char_p), ("source", c_char_p),
                ("namespace_", c_char_p), ("metadata_json", c_char_p),
                ("semantic_rank", c_uint32), ("lexical_rank", c_uint32)]


class Resource(Structure):
    _fields_ = [("doc_id", c_char_p), ("source", c_char_p)]


RESOLVER_FN = CFUNCTYPE(c_int, c_void_p, c_char_p, c_char_pp, c_size_t,
                        POINTER(Resource), c_size_t, POINTER(c_ubyte))
WRITE_FN = CFUNCTYPE(c_int, c_void_p, POINTER(ctypes.c_char), c_size_t)

# ------------------------------------------------------------- loading


def _candidates():
    env = os.environ.get("WARDEN_LIBRARY")
    if env:
        yield env, "WARDEN_LIBRARY"
        return  # an explicit choice is never silently replaced
    try:
        from . import _build_info  # written by setup.py at install time
        yield _build_info.LIBRARY, "recorded at install"
    except ImportError:
        pass
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "..", "..", "..", "build", "libwarden.so"), "source tree"
    yield os.path.join(here, "libwarden.so"), "package directory"
    found = ctypes.util.find_library("warden")
    if found:
        yield found, "system search path"


def _load():
    tried = []
    for path, why in _candidates():
        if os.path.sep in path and not os.path.exists(path):
            tried.append(f"{path} ({why}: missing)")
            continue
        try:
            return ctypes.CDLL(os.path.normpath(path) if os.path.sep in path else path), path
        except OSError as e:
            tried.append(f"{path} ({why}: {e})")
    raise ImportError("warden: cannot find libwarden.so; build it with `make` in "
                      "the repository or set WARDEN_LIBRARY=/path/to/libwarden.so. "
                      "Tried: " + "; ".join(tried))


lib, LIBRARY_PATH = _load()


def _proto(l, name, restype, *argtypes, optional=False):
    try:
        f = getattr(l, name)
    except AttributeError:
        if optional:
            return None
        raise ImportError(f"warden: {LIBRARY_PATH} has no {name}: rebuild libwarden.so")
    f.restype = restype
    f.argtypes = argtypes
    return f


P = c_void_p  # the opaque warden* / warden_results* handles


def declare(l):
    """Set the prototypes of every function this package calls on the
    library object l (a ctypes.CDLL; bench/threads.py also passes a
    ctypes.PyDLL, which holds the GIL, for comparison).  Returns whether l
    has warden_upsert."""
    _proto(l, "warden_strerror", c_char_p, c_int)
    _proto(l, "warden_free", None, c_void_p)
    _proto(l, "warden_errmsg", c_char_p, P)
    _proto(l, "warden_create", c_int, c_char_p, POINTER(CreateOpts), c_char_p, c_size_t)
    _proto(l, "warden_open", c_int, c_char_p, POINTER(OpenOpts), POINTER(c_void_p),
           c_char_p, c_size_t)
    _proto(l, "warden_close", None, P)
    _proto(l, "warden_stats", c_int, P, POINTER(c_void_p))
    _proto(l, "warden_check", c_int, P, POINTER(c_void_p))
    _proto(l, "warden_export", c_int, P, WRITE_FN, c_void_p)
    _proto(l, "warden_ingest", c_int, P, c_char_pp, c_size_t, POINTER(IngestOpts),
           POINTER(IngestReport))
    _proto(l, "warden_ingest_buffer", c_int, P, c_char_p, c_char_p, c_size_t,
           POINTER(IngestOpts), POINTER(IngestReport))
    # The typed upsert (engine/warden.h); optional so that a library built
    # before it landed still loads (Collection.upsert then uses the JSON path).
    have_upsert = _proto(l, "warden_upsert", c_int, P, POINTER(Doc), c_size_t,
                         POINTER(c_float), c_size_t, POINTER(UpsertOpts),
                         POINTER(IngestReport), optional=True) is not None
    _proto(l, "warden_delete", c_int, P, c_char_pp, c_size_t, POINTER(WriteReport))
    _proto(l, "warden_acl_get", c_int, P, c_char_p, POINTER(c_void_p))
    _proto(l, "warden_acl_set", c_int, P, c_char_p, c_char_pp, c_size_t, c_char_pp,
           c_size_t, POINTER(WriteReport))
    _proto(l, "warden_acl_sync", c_int, P, c_char_p, POINTER(IngestOpts), POINTER(WriteReport))
    _proto(l, "warden_principal_set", c_int, P, c_char_p, c_char_pp, c_size_t,
           POINTER(WriteReport))
    _proto(l, "warden_principal_get", c_int, P, c_char_p, POINTER(c_void_p))
    _proto(l, "warden_principals_sync", c_int, P, c_char_p, POINTER(IngestOpts),
           POINTER(WriteReport))
    _proto(l, "warden_query", c_int, P, POINTER(c_float), c_size_t, POINTER(QueryOpts),
           POINTER(c_void_p))
    _proto(l, "warden_query_text", c_int, P, c_char_p, POINTER(QueryOpts), POINTER(c_void_p))
    _proto(l, "warden_results_revision", c_uint64, P)
    _proto(l, "warden_results_nqueries", c_size_t, P)
    _proto(l, "warden_results_count", c_size_t, P, c_size_t)
    _proto(l, "warden_results_hit", POINTER(HitStruct), P, c_size_t, c_size_t)
    _proto(l, "warden_results_degraded", c_int, P, c_size_t)
    _proto(l, "warden_results_plan", c_char_p, P, c_size_t)
    _proto(l, "warden_results_free", None, P)
    _proto(l, "warden_embed", c_int, P, c_char_p, POINTER(c_float))
    _proto(l, "warden_revision", c_int, P, POINTER(c_uint64))
    _proto(l, "warden_dimension", c_uint, P)
    _proto(l, "warden_metric", c_int, P)
    _proto(l, "warden_index_build", c_int, P, c_void_p, POINTER(c_void_p))
    _proto(l, "warden_set_resolver", c_int, P, RESOLVER_FN, c_void_p)
    _proto(l, "warden_grant_add", c_int, P, c_char_p, c_char_p, POINTER(WriteReport))
    _proto(l, "warden_grant_remove", c_int, P, c_char_p, c_char_p, POINTER(WriteReport))
    _proto(l, "warden_grant_list", c_int, P, POINTER(c_void_p))
    return have_upsert


HAVE_UPSERT = declare(lib)


def take_string(p: c_void_p) -> str:
    """Decode and free a library-owned string (char * out-parameter)."""
    if not p.value:
        return ""
    try:
        return ctypes.string_at(p.value).decode("utf-8", "replace")
    finally:
        lib.warden_free(p)


def strarray(items):
    """(array, keepalive) for a const char *const * argument; (None, []) for None."""
    if items is None:
        return None, []
    enc = [s.encode("utf-8") for s in items]
    arr = (c_char_p * max(1, len(enc)))(*enc)
    return arr, enc
