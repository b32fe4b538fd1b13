/*
 * faiss_capi.h -- the FAISS C API as warden uses it, on any FAISS >= 1.7.3.
 *
 * Debian 12 ships FAISS 1.7.3: the C API headers, a static C++ libfaiss.a,
 * and no libfaiss_c.  We implement the C API functions warden, its
 * benchmarks and its tests need (the ones below and the ones the 1.7.3
 * headers already declare, listed at the end of this file) on top of the
 * C++ library, in two units: index/faiss_capi.cpp holds the eleven the
 * library calls (faiss_get_last_error, faiss_Index_{free,add,assign},
 * faiss_IndexFlat{IP,L2}_new_with, faiss_ClusteringParameters_init,
 * faiss_Clustering_{new_with_params,train,centroids,free}) and is part of
 * libwarden; bench/faiss_capi_extra.cpp holds the rest and is linked only
 * into the benchmark and test binaries that use them.
 *
 * This header pulls in the installed 1.7.3 headers and adds the
 * declarations that appeared upstream in FAISS 1.7.4 and later (search
 * parameters, bitmap / boolean id selectors, faiss_Index_search_with_params)
 * with the exact upstream signatures.  Every declaration here is a
 * compatible redeclaration of the upstream one, so this header also
 * compiles against newer installed headers; the one macro we add is
 * guarded.
 *
 * Conventions (the same as upstream):
 *   - every handle is the C++ object behind an opaque pointer; a handle of a
 *     derived class (FaissIndexIVFFlat, ...) is a FaissIndex and may be
 *     passed to any faiss_Index_* function;
 *   - functions returning int return 0 on success and a negative code on
 *     failure (-2 FAISS exception, -4 other std::exception, -1 unknown);
 *     the message is then available from faiss_get_last_error(), which is
 *     per thread and stays valid until the next failing call on that thread;
 *     faiss_get_last_error() returns NULL if no call has failed yet on this
 *     thread;
 *   - getters/setters have no error channel: on a NULL or wrong-type handle a
 *     getter returns 0/NULL and a setter does nothing;
 *   - out-parameters are written only on success.
 *
 * Lifetimes worth knowing (all inherited from FAISS):
 *   - an IDSelectorBitmap borrows `bitmap`; an IDSelectorNot/And/Or/XOr
 *     borrows its operand selectors; a SearchParameters borrows its selector.
 *     Keep them alive until the object that borrows them is freed.
 *   - faiss_IndexIVF_quantizer returns a handle owned by the IVF index.
 *   - an IVF index built with faiss_IndexIVF*_new_with* does NOT own its
 *     quantizer until faiss_IndexIVF_set_own_fields(ivf, 1) is called; an
 *     index returned by faiss_read_index* owns everything.
 *
 * Threading: searches on one index from several threads are safe once the
 * index is no longer being modified (FAISS's rule); train/add/reset/remove
 * need exclusive access.
 */
#ifndef WD_FAISS_CAPI_H
#define WD_FAISS_CAPI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <faiss/c_api/faiss_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/impl/AuxIndexStructures_c.h>
#include <faiss/c_api/Clustering_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/IndexIVFFlat_c.h>
#include <faiss/c_api/IndexScalarQuantizer_c.h>
#include <faiss/c_api/MetaIndexes_c.h>
#include <faiss/c_api/clone_index_c.h>
#include <faiss/c_api/index_io_c.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef FAISS_DECLARE_SEARCH_PARAMETERS_DOWNCAST
#define FAISS_DECLARE_SEARCH_PARAMETERS_DOWNCAST(clazz) \
  Faiss##clazz *faiss_##clazz##_cast(FaissSearchParameters *);
#endif

/* ---- Index_c.h (>= 1.7.4) ------------------------------------------- */

/* Per-call search options; `sel` (may be NULL) restricts the ids that may
 * be returned.  Free with faiss_SearchParameters_free. */
FAISS_DECLARE_CLASS(SearchParameters)
FAISS_DECLARE_DESTRUCTOR(SearchParameters)

int faiss_SearchParameters_new(FaissSearchParameters **p_sp,
                               FaissIDSelector *sel);

/* Like faiss_Index_search, with per-call parameters (NULL = defaults).
 * distances and labels are n*k; missing results (fewer than k allowed ids)
 * are labelled -1 with distance +/-FLT_MAX.  For an IVF index, params must
 * be NULL or a FaissSearchParametersIVF.  On an IndexIDMap the selector
 * sees the external ids (FAISS >= 1.7.4 behaviour; 1.7.3 refuses). */
int faiss_Index_search_with_params(const FaissIndex *index, idx_t n,
                                   const float *x, idx_t k,
                                   const FaissSearchParameters *params,
                                   float *distances, idx_t *labels);

/* ---- IndexIVF_c.h (>= 1.7.4) ---------------------------------------- */

/* IVF search options: selector, nprobe (lists visited per query) and
 * max_codes (0 = no limit on codes scanned).  It is a FaissSearchParameters
 * and is freed with either destructor. */
FAISS_DECLARE_CLASS_INHERITED(SearchParametersIVF, SearchParameters)
FAISS_DECLARE_DESTRUCTOR(SearchParametersIVF)
FAISS_DECLARE_SEARCH_PARAMETERS_DOWNCAST(SearchParametersIVF)

int faiss_SearchParametersIVF_new(FaissSearchParametersIVF **p_sp);
int faiss_SearchParametersIVF_new_with(FaissSearchParametersIVF **p_sp,
                                       FaissIDSelector *sel, size_t nprobe,
                                       size_t max_codes);

FAISS_DECLARE_GETTER(SearchParametersIVF, const FaissIDSelector *, sel)
FAISS_DECLARE_GETTER_SETTER(SearchParametersIVF, size_t, nprobe)
FAISS_DECLARE_GETTER_SETTER(SearchParametersIVF, size_t, max_codes)

/* ---- impl/AuxIndexStructures_c.h (>= 1.7.4) ------------------------- */

/* Selects id iff id/8 < n and bit (id%8) of bitmap[id/8] is set: n is the
 * size of the bitmap in BYTES.  The bitmap is borrowed, not copied. */
FAISS_DECLARE_CLASS(IDSelectorBitmap)
FAISS_DECLARE_DESTRUCTOR(IDSelectorBitmap)
FAISS_DECLARE_GETTER(IDSelectorBitmap, size_t, n)
FAISS_DECLARE_GETTER(IDSelectorBitmap, const uint8_t *, bitmap)

int faiss_IDSelectorBitmap_new(FaissIDSelectorBitmap **p_sel, size_t n,
                               const uint8_t *bitmap);

/* Boolean combinations; operands are borrowed.  Free with
 * faiss_IDSelector_free. */
FAISS_DECLARE_CLASS(IDSelectorNot)
int faiss_IDSelectorNot_new(FaissIDSelectorNot **p_sel,
                            const FaissIDSelector *sel);

FAISS_DECLARE_CLASS(IDSelectorAnd)
int faiss_IDSelectorAnd_new(FaissIDSelectorAnd **p_sel,
                            const FaissIDSelector *lhs_sel,
                            const FaissIDSelector *rhs_sel);

FAISS_DECLARE_CLASS(IDSelectorOr)
int faiss_IDSelectorOr_new(FaissIDSelectorOr **p_sel,
                           const FaissIDSelector *lhs_sel,
                           const FaissIDSelector *rhs_sel);

FAISS_DECLARE_CLASS(IDSelectorXOr)
int faiss_IDSelectorXOr_new(FaissIDSelectorXOr **p_sel,
                            const FaissIDSelector *lhs_sel,
                            const FaissIDSelector *rhs_sel);

/* ---- warden extensions: NOT in upstream FAISS ------------------------
 *
 * Raw access to an IVF index's inverted lists, for code that scans lists
 * itself.  A system libfaiss_c does not have these: code that must also
 * link against a real libfaiss_c should test WD_FAISS_CAPI_EXT. */
#define WD_FAISS_CAPI_EXT 1

/* Bytes per stored code (d*4 for IVFFlat, d for SQ8). 0 on a bad handle. */
size_t faiss_IndexIVF_code_size(const FaissIndexIVF *index);

/* Copies the codes of list list_no (get_list_size * code_size bytes) into
 * codes, which holds codes_size bytes.  Fails if list_no >= nlist or
 * codes_size is too small. */
int faiss_IndexIVF_invlists_get_codes(const FaissIndexIVF *index,
                                      size_t list_no, uint8_t *codes,
                                      size_t codes_size);

/* ---- implemented from the 1.7.3 headers ------------------------------
 *
 * faiss_get_last_error
 * faiss_Index_{free,d,is_trained,ntotal,metric_type,verbose,set_verbose,
 *   train,add,add_with_ids,search,range_search,assign,reset,remove_ids,
 *   reconstruct,reconstruct_n}
 * faiss_IDSelector_{free,is_member}, faiss_IDSelectorRange_{new,free,imin,
 *   imax}, faiss_IDSelectorBatch_{new,nbits,mask}
 * faiss_IndexFlat_{new,new_with,xb,cast,free}, faiss_IndexFlatIP_*,
 *   faiss_IndexFlatL2_* ({new,new_with,cast,free})
 * faiss_IndexIVF_{cast,free,nlist,nprobe,set_nprobe,quantizer,
 *   quantizer_trains_alone,own_fields,set_own_fields,get_list_size,
 *   invlists_get_ids,make_direct_map,imbalance_factor,search_preassigned}
 * faiss_IndexIVFFlat_{new,new_with,new_with_metric,cast,free,nlist,nprobe,
 *   set_nprobe,quantizer,own_fields,set_own_fields}
 * faiss_IndexScalarQuantizer_{new,new_with,cast,free}
 * faiss_IndexIVFScalarQuantizer_{new,new_with,new_with_metric,cast,free,
 *   nlist,nprobe,set_nprobe,quantizer,own_fields,set_own_fields}
 * faiss_IndexIDMap_{new,cast,own_fields,set_own_fields,id_map,sub_index}
 * faiss_ClusteringParameters_init, faiss_Clustering_{new,new_with_params,
 *   train,centroids,free} and its parameter getters (d, k, niter, ...),
 *   faiss_kmeans_clustering
 * faiss_clone_index
 * faiss_write_index, faiss_write_index_fname, faiss_read_index,
 *   faiss_read_index_fname
 */

#ifdef __cplusplus
}
#endif

#endif /* WD_FAISS_CAPI_H */
