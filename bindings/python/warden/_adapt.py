"""The logic of the framework adapters (warden.langchain,
warden.llama_index), kept here, framework-free, so that it is tested
whether or not LangChain or LlamaIndex can be imported.  The adapters only
convert between their types and these functions' plain values.

Identity: a framework search must name a principal, bound by trusted code
(LangChain: as_retriever(search_kwargs={"principal": ...}); LlamaIndex: the
store's constructor or the reserved filter keys below).  A search without
one raises warden.InvalidInput; it is never answered as "everyone".

Documents from framework texts: each text is one warden document with one
chunk.  Its metadata may carry reserved keys, taken out before the rest is
stored as warden metadata: "source" (default "warden:DOC_ID"), "namespace",
"acl" ({"allow": [...], "deny": [...]}); an ``acl=`` argument applies to
every text that has none (else the collection's default_acl applies).
"""
from __future__ import annotations

import uuid
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple

from .errors import InvalidInput

RESERVED = ("source", "namespace", "acl")
#: LlamaIndex filter keys that carry identity instead of metadata
PRINCIPAL_KEY, GROUPS_KEY = "warden_principal", "warden_groups"

SEARCH_KEYS = ("principal", "groups", "k", "filter", "namespaces", "min_revision",
               "agent", "agent_groups", "strategy", "target_recall")


def require_principal(kwargs: Mapping[str, Any], where: str) -> None:
    p = kwargs.get("principal")
    if not p or not isinstance(p, str):
        raise InvalidInput(
            f"{where}: a principal is required (bind it where the retriever or store is "
            "made, e.g. as_retriever(search_kwargs={'principal': 'user:alice', "
            "'groups': [...]})); warden never answers a search as 'everyone'",
            InvalidInput.code, "WARDEN_EINVAL")


IDENTITY_KEYS = ("principal", "groups", "agent", "agent_groups")


def bound_merge(bound: Mapping[str, Any], call: Mapping[str, Any], where: str) -> dict:
    """``{**bound, **call}``, except that identity bound where the store was
    made cannot be replaced per call: a call-time principal, groups, agent
    or agent_groups that differs from a bound one is refused.  Call-time
    arguments are query data (a framework may let the model write them);
    identity comes from where the store or retriever was made."""
    for key in IDENTITY_KEYS:
        if key in bound and key in call and call[key] != bound[key]:
            raise InvalidInput(
                f"{where}: {key} is bound to this store ({bound[key]!r}); a call may not "
                f"replace it with {call[key]!r}", InvalidInput.code, "WARDEN_EINVAL")
    return {**bound, **call}


def filter_identity(principal: Optional[str], groups: Optional[List[str]],
                    bound_principal: Optional[str], bound_groups: Optional[Sequence[str]],
                    where: str) -> Tuple[Optional[str], Optional[Sequence[str]]]:
    """The identity of a query whose filters named (principal, groups) --
    None where they did not -- on a store made for (bound_principal,
    bound_groups).  Filters are query data (an auto-retriever lets the
    model write them): they may name the identity only on a store made
    without a principal, never replace the one it was made for."""
    if bound_principal and (principal is not None or groups is not None):
        raise InvalidInput(
            f"{where}: this store is bound to {bound_principal!r}; filters may not name "
            f"{PRINCIPAL_KEY} or {GROUPS_KEY}", InvalidInput.code, "WARDEN_EINVAL")
    return (principal or bound_principal,
            groups if groups is not None else bound_groups)


def search_args(kwargs: Mapping[str, Any], where: str) -> dict:
    """The Collection.query keyword arguments among a framework call's
    kwargs (unknown keys are refused, not ignored)."""
    require_principal(kwargs, where)
    unknown = [k for k in kwargs if k not in SEARCH_KEYS]
    if unknown:
        raise InvalidInput(f"{where}: unknown search argument(s) {unknown}; "
                           f"expected {list(SEARCH_KEYS)}", InvalidInput.code, "WARDEN_EINVAL")
    return dict(kwargs)


def texts_to_documents(texts: Sequence[str], metadatas: Optional[Sequence[Mapping]] = None,
                       ids: Optional[Sequence[Optional[str]]] = None,
                       acl: Optional[Mapping] = None) -> Tuple[list, List[str]]:
    """Warden documents (one chunk each) for framework texts, and their ids
    (generated as uuid4 hex where none is given)."""
    texts = list(texts)
    if metadatas is not None and len(metadatas) != len(texts):
        raise InvalidInput(f"{len(metadatas)} metadatas for {len(texts)} texts",
                           InvalidInput.code, "WARDEN_EINVAL")
    if ids is not None and len(ids) != len(texts):
        raise InvalidInput(f"{len(ids)} ids for {len(texts)} texts", InvalidInput.code,
                           "WARDEN_EINVAL")
    docs, out_ids = [], []
    for i, t in enumerate(texts):
        md = dict(metadatas[i] or {}) if metadatas is not None else {}
        doc_id = (ids[i] if ids is not None else None) or uuid.uuid4().hex
        d = {"doc_id": doc_id, "source": md.pop("source", None) or f"warden:{doc_id}",
             "chunks": [{"text": t}]}
        ns = md.pop("namespace", None)
        if ns is not None:
            d["namespace"] = ns
        a = md.pop("acl", None) or acl
        if a is not None:
            d["acl"] = {"allow": list(a.get("allow", [])), "deny": list(a.get("deny", []))}
        d["metadata"] = {k: v for k, v in md.items() if v is not None}
        docs.append(d)
        out_ids.append(doc_id)
    return docs, out_ids


def hit_metadata(h) -> dict:
    """A hit's metadata as the frameworks see it: the document's metadata
    plus doc_id, chunk, source and namespace."""
    md = dict(h.metadata)
    md.update(doc_id=h.doc_id, chunk=h.chunk, source=h.source, namespace=h.namespace)
    return md


def relevance(score: float, metric: str) -> float:
    """A [0, 1] relevance for a warden score (higher is better)."""
    if metric == "cosine":
        return max(0.0, min(1.0, (1.0 + score) / 2.0))
    if metric == "l2":
        return max(0.0, 1.0 - (max(score, 0.0) ** 0.5) / 2 ** 0.5)
    return 1.0 / (1.0 + pow(2.718281828459045, -score))  # ip: logistic


_OPS = {"==": "$eq", "!=": "$ne", ">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte",
        "in": "$in", "nin": "$nin", "any": "$in", "contains": "$eq"}


def filters_to_warden(node) -> Tuple[Optional[dict], Optional[str], Optional[List[str]]]:
    """(warden filter, principal, groups) from a LlamaIndex MetadataFilters
    tree, read by attribute (``.filters``, ``.condition``; leaves ``.key``,
    ``.value``, ``.operator``) so any object of that shape works.  The
    reserved keys warden_principal / warden_groups (operator ==, AND at the
    top level only) carry identity; everything else becomes a Mongo-dialect
    filter.  Unsupported operators (text_match, is_empty, all, not) raise
    InvalidInput rather than being dropped (a dropped filter would widen
    the answer)."""
    principal, groups = None, None

    def val(x):
        return getattr(x, "value", x)

    def conv(n, top):
        nonlocal principal, groups
        if hasattr(n, "filters"):
            cond = str(val(getattr(n, "condition", None) or "and")).lower()
            if cond not in ("and", "or"):
                raise InvalidInput(f"filter condition {cond!r} is not supported",
                                   InvalidInput.code, "WARDEN_EINVAL")
            parts = []
            for f in n.filters:
                key = getattr(f, "key", None)
                if key in (PRINCIPAL_KEY, GROUPS_KEY):
                    if not (top and cond == "and"):
                        raise InvalidInput(f"{key} may only appear in the top-level AND",
                                           InvalidInput.code, "WARDEN_EINVAL")
                    if key == PRINCIPAL_KEY:
                        principal = f.value
                    else:
                        groups = [f.value] if isinstance(f.value, str) else list(f.value)
                    continue
                c = conv(f, False)
                if c is not None:
                    parts.append(c)
            if not parts:
                return None
            if len(parts) == 1:
                return parts[0]
            return {"$and" if cond == "and" else "$or": parts}
        op = str(val(getattr(n, "operator", "==")))
        if op not in _OPS:
            raise InvalidInput(f"filter operator {op!r} on {n.key!r} is not supported",
                               InvalidInput.code, "WARDEN_EINVAL")
        v = n.value
        if op in ("in", "nin", "any") and not isinstance(v, (list, tuple)):
            v = [v]
        return {n.key: {_OPS[op]: list(v) if isinstance(v, tuple) else v}}

    flt = conv(node, True) if node is not None else None
    return flt, principal, groups


def add_documents(col, texts, metadatas, ids, embed_documents, acl=None) -> List[str]:
    """Embed texts with ``embed_documents(list[str]) -> rows`` and upsert them."""
    import numpy as np
    docs, out = texts_to_documents(list(texts), metadatas, ids, acl)
    if not docs:
        return []
    emb = np.asarray(embed_documents([d["chunks"][0]["text"] for d in docs]), dtype=np.float32)
    col.upsert(docs, emb)
    return out


def as_list(x: Optional[Iterable[str]]) -> Optional[List[str]]:
    return None if x is None else ([x] if isinstance(x, str) else list(x))


def doc_ids_where(col, key: str, value: str) -> List[str]:
    """doc_ids whose metadata[key] == value, by a scan of col.export()
    (O(collection): for deletes by a framework's parent-document id)."""
    import json
    out = []
    for line in (col.export() or "").splitlines():
        if line:
            d = json.loads(line)
            if (d.get("metadata") or {}).get(key) == value:
                out.append(d["doc_id"])
    return out
