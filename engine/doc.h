/*
 * doc.h -- a document's footprint in the store: its record, chunk records,
 * embeddings and bit in every bitmap that names it.  Ingest, delete and ACL
 * changes go through here so that the bitmaps always agree with records.
 */
#ifndef WD_DOC_H
#define WD_DOC_H
#include <jansson.h>

#include "engine/store.h"

/* Metadata value -> index key(s): call fn for each scalar of a metadata
 * value of field type t (one for scalars, one per element for lists). */
int doc_meta_values(const json_t *v, wd_type t,
                    int (*fn)(const wd_value *val, void *ctx), void *ctx);

/* Add (set=1) or remove (set=0) the doc's slots in the bitmaps named by its
 * record: live, allow, deny, namespace and metadata. */
int doc_index(wd_txn *tx, const json_t *rec, int set);
/* Only the ACL bitmaps (allow/deny lists of rec). */
int doc_index_acl(wd_txn *tx, const json_t *rec, int set);

/* Remove a stored document entirely (record, chunks, embeddings, bits).
 * rec is its stored record.  Adjusts the txn counters. */
int doc_remove(wd_txn *tx, const json_t *rec);

/* Extract the slots array of a record into a new u32 array (wd_free). */
int doc_slots(warden *db, const json_t *rec, uint32_t **slots, size_t *n);

#endif
