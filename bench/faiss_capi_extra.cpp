/*
 * faiss_capi_extra.cpp -- the rest of our FAISS C API (faiss_capi.h): what
 * the benchmarks (bench/exact_scan.c, warden_bench.c, ivf_bench.c,
 * faiss_probe.c) and tests/test_faiss_capi.c use and the library does not.
 * It is linked into those binaries only, never into libwarden, and only
 * when the system has no libfaiss_c (see the Makefile).
 *
 * The conventions are index/faiss_capi.cpp's, with the exception boundary,
 * argument checks and error buffer shared through faiss_capi_impl.h, plus
 * one more hardening: handles are always converted through faiss::Index* /
 * IDSelector* / SearchParameters* (the declared base) and downcast with
 * dynamic_cast, so a wrong handle type is an error, not undefined
 * behaviour.  The IVF constructors also set cp.min_points_per_centroid = 1:
 * it only controls a "please provide more training points" warning that
 * FAISS would print to stderr, and a library must not print.
 *
 * The boolean selectors (And/Or/XOr) are not in the 1.7.3 C++ library; they
 * are defined here in an anonymous namespace so they cannot clash with a
 * newer libfaiss that has its own.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wextra"
#include <faiss/Clustering.h>
#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexFlatCodes.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/clone_index.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/index_io.h>
#include <faiss/invlists/InvertedLists.h>
#pragma GCC diagnostic pop

#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "index/faiss_capi_impl.h"

using namespace wd_faiss;

namespace {

/* Derived index handles (FaissIndexIVF, ...) are typedefs of FaissIndex. */
template <class T>
T *as(FaissIndex *h) {
  return h ? dynamic_cast<T *>(idx(h)) : nullptr;
}
template <class T>
const T *as(const FaissIndex *h) {
  return h ? dynamic_cast<const T *>(idx(h)) : nullptr;
}

/* Like as<T>, but an error when the handle is NULL or of the wrong type. */
template <class T>
T *must(FaissIndex *h, const char *type) {
  need(h, "index");
  T *p = dynamic_cast<T *>(idx(h));
  if (!p) throw std::invalid_argument(std::string("index is not an ") + type);
  return p;
}
template <class T>
const T *must(const FaissIndex *h, const char *type) {
  need(h, "index");
  const T *p = dynamic_cast<const T *>(idx(h));
  if (!p) throw std::invalid_argument(std::string("index is not an ") + type);
  return p;
}

const faiss::IDSelector *sel_of(const FaissIDSelector *h) {
  return reinterpret_cast<const faiss::IDSelector *>(h);
}

faiss::SearchParameters *sp_of(FaissSearchParameters *h) {
  return reinterpret_cast<faiss::SearchParameters *>(h);
}
const faiss::SearchParameters *sp_of(const FaissSearchParameters *h) {
  return reinterpret_cast<const faiss::SearchParameters *>(h);
}
faiss::SearchParametersIVF *spivf_of(FaissSearchParametersIVF *h) {
  return h ? dynamic_cast<faiss::SearchParametersIVF *>(sp_of(h)) : nullptr;
}
const faiss::SearchParametersIVF *spivf_of(const FaissSearchParametersIVF *h) {
  return h ? dynamic_cast<const faiss::SearchParametersIVF *>(sp_of(h))
           : nullptr;
}

faiss::MetricType metric_of(FaissMetricType m) {
  switch (m) {
    case METRIC_INNER_PRODUCT: return faiss::METRIC_INNER_PRODUCT;
    case METRIC_L2: return faiss::METRIC_L2;
    case METRIC_L1: return faiss::METRIC_L1;
    case METRIC_Linf: return faiss::METRIC_Linf;
    case METRIC_Lp: return faiss::METRIC_Lp;
    case METRIC_Canberra: return faiss::METRIC_Canberra;
    case METRIC_BrayCurtis: return faiss::METRIC_BrayCurtis;
    case METRIC_JensenShannon: return faiss::METRIC_JensenShannon;
  }
  throw std::invalid_argument("unknown metric type");
}

faiss::ScalarQuantizer::QuantizerType qtype_of(FaissQuantizerType qt) {
  switch (qt) {
    case QT_8bit: return faiss::ScalarQuantizer::QT_8bit;
    case QT_4bit: return faiss::ScalarQuantizer::QT_4bit;
    case QT_8bit_uniform: return faiss::ScalarQuantizer::QT_8bit_uniform;
    case QT_4bit_uniform: return faiss::ScalarQuantizer::QT_4bit_uniform;
    case QT_fp16: return faiss::ScalarQuantizer::QT_fp16;
    case QT_8bit_direct: return faiss::ScalarQuantizer::QT_8bit_direct;
    case QT_6bit: return faiss::ScalarQuantizer::QT_6bit;
  }
  throw std::invalid_argument("unknown scalar quantizer type");
}

/* Flat-code indexes (flat, SQ) index storage by position without bounds
 * checks in FAISS 1.7.3; other index types check keys themselves. */
void check_stored_range(const faiss::Index *index, idx_t i0, idx_t ni) {
  if (!dynamic_cast<const faiss::IndexFlatCodes *>(index)) return;
  if (i0 < 0 || ni < 0 || i0 > index->ntotal || ni > index->ntotal - i0)
    throw std::out_of_range("vector key out of range");
}

/* See the file comment: silences FAISS's stderr training-size warning. */
void quiet_training(faiss::IndexIVF *ivf) { ivf->cp.min_points_per_centroid = 1; }

/* ---- boolean selectors missing from FAISS 1.7.3 ----------------------- */

/* Selector over an IndexIDMap's sub-index positions: position i is a member
 * iff the caller's selector accepts the external id id_map[i]. */
struct SelTranslated : faiss::IDSelector {
  const std::vector<idx_t> *id_map;
  const faiss::IDSelector *sel;
  SelTranslated(const std::vector<idx_t> *m, const faiss::IDSelector *s)
      : id_map(m), sel(s) {}
  bool is_member(idx_t i) const override {
    return i >= 0 && static_cast<size_t>(i) < id_map->size() &&
           sel->is_member((*id_map)[static_cast<size_t>(i)]);
  }
};

struct SelAnd : faiss::IDSelector {
  const faiss::IDSelector *a, *b;
  SelAnd(const faiss::IDSelector *a_, const faiss::IDSelector *b_)
      : a(a_), b(b_) {}
  bool is_member(idx_t id) const override {
    return a->is_member(id) && b->is_member(id);
  }
};
struct SelOr : faiss::IDSelector {
  const faiss::IDSelector *a, *b;
  SelOr(const faiss::IDSelector *a_, const faiss::IDSelector *b_)
      : a(a_), b(b_) {}
  bool is_member(idx_t id) const override {
    return a->is_member(id) || b->is_member(id);
  }
};
struct SelXOr : faiss::IDSelector {
  const faiss::IDSelector *a, *b;
  SelXOr(const faiss::IDSelector *a_, const faiss::IDSelector *b_)
      : a(a_), b(b_) {}
  bool is_member(idx_t id) const override {
    return a->is_member(id) != b->is_member(id);
  }
};
}  // namespace

extern "C" {

/* ======================================================================
 * error_c.h
 * ====================================================================== */

/* ======================================================================
 * Index_c.h
 * ====================================================================== */

int faiss_Index_d(const FaissIndex *index) {
  return index ? static_cast<int>(idx(index)->d) : 0;
}
int faiss_Index_is_trained(const FaissIndex *index) {
  return index ? static_cast<int>(idx(index)->is_trained) : 0;
}
idx_t faiss_Index_ntotal(const FaissIndex *index) {
  return index ? idx(index)->ntotal : 0;
}
FaissMetricType faiss_Index_metric_type(const FaissIndex *index) {
  return index ? static_cast<FaissMetricType>(idx(index)->metric_type)
               : METRIC_L2;
}
int faiss_Index_verbose(const FaissIndex *index) {
  return index ? static_cast<int>(idx(index)->verbose) : 0;
}
void faiss_Index_set_verbose(FaissIndex *index, int verbose) {
  if (index) idx(index)->verbose = verbose != 0;
}

int faiss_Index_train(FaissIndex *index, idx_t n, const float *x) {
  return guarded([&] {
    need(index, "index");
    need_count(n, "n");
    if (n > 0) need(x, "x");
    idx(index)->train(n, x);
  });
}

int faiss_Index_add_with_ids(FaissIndex *index, idx_t n, const float *x,
                             const idx_t *xids) {
  return guarded([&] {
    need(index, "index");
    need_count(n, "n");
    if (n > 0) need(x, "x");
    idx(index)->add_with_ids(n, x, xids);
  });
}

int faiss_Index_search(const FaissIndex *index, idx_t n, const float *x,
                       idx_t k, float *distances, idx_t *labels) {
  return guarded([&] {
    need(index, "index");
    need_count(n, "n");
    if (k <= 0) throw std::invalid_argument("k must be positive");
    if (n > 0) {
      need(x, "x");
      need(distances, "distances");
      need(labels, "labels");
    }
    idx(index)->search(n, x, k, distances, labels);
  });
}

int faiss_Index_search_with_params(const FaissIndex *index, idx_t n,
                                   const float *x, idx_t k,
                                   const FaissSearchParameters *params,
                                   float *distances, idx_t *labels) {
  return guarded([&] {
    need(index, "index");
    need_count(n, "n");
    if (k <= 0) throw std::invalid_argument("k must be positive");
    if (n > 0) {
      need(x, "x");
      need(distances, "distances");
      need(labels, "labels");
    }
    const faiss::SearchParameters *p = params ? sp_of(params) : nullptr;
    /* FAISS 1.7.3's IVF search would silently ignore (or fail on) plain
     * SearchParameters; say clearly what is wrong. */
    const faiss::Index *target = idx(index);
    /* FAISS 1.7.3's IndexIDMap refuses search parameters; >= 1.7.4 applies
     * the selector to the external ids.  Do the same: search the sub-index
     * with a copy of params whose selector translates positions to ids,
     * then map the labels.  The caller's params are not modified. */
    const faiss::IndexIDMap *map =
        dynamic_cast<const faiss::IndexIDMap *>(target);
    faiss::SearchParameters plain;
    faiss::SearchParametersIVF ivfp;
    SelTranslated trans(map ? &map->id_map : nullptr, p ? p->sel : nullptr);
    if (map && p) {
      target = map->index;
      faiss::SearchParameters *copy = &plain;
      if (auto *pi = dynamic_cast<const faiss::SearchParametersIVF *>(p)) {
        ivfp.nprobe = pi->nprobe;
        ivfp.max_codes = pi->max_codes;
        ivfp.quantizer_params = pi->quantizer_params;
        copy = &ivfp;
      }
      copy->sel = trans.sel ? &trans : nullptr;
      p = copy;
    }
    /* FAISS 1.7.3's IVF search fails on plain SearchParameters with an
     * obscure message; say clearly what is wrong. */
    if (p && dynamic_cast<const faiss::IndexIVF *>(target) &&
        !dynamic_cast<const faiss::SearchParametersIVF *>(p))
      throw std::invalid_argument(
          "IVF index needs FaissSearchParametersIVF, not FaissSearchParameters");
    target->search(n, x, k, distances, labels, p);
    if (map && target != idx(index)) {
      for (idx_t i = 0; i < n * k; i++)
        if (labels[i] >= 0)
          labels[i] = map->id_map[static_cast<size_t>(labels[i])];
    }
  });
}

int faiss_Index_range_search(const FaissIndex *index, idx_t n, const float *x,
                             float radius, FaissRangeSearchResult *result) {
  return guarded([&] {
    need(index, "index");
    need(result, "result");
    need_count(n, "n");
    if (n > 0) need(x, "x");
    idx(index)->range_search(
        n, x, radius, reinterpret_cast<faiss::RangeSearchResult *>(result));
  });
}

int faiss_Index_reset(FaissIndex *index) {
  return guarded([&] { idx(need(index, "index"))->reset(); });
}

int faiss_Index_remove_ids(FaissIndex *index, const FaissIDSelector *sel,
                           size_t *n_removed) {
  return guarded([&] {
    need(index, "index");
    need(sel, "sel");
    size_t r = idx(index)->remove_ids(*sel_of(sel));
    if (n_removed) *n_removed = r;
  });
}

int faiss_Index_reconstruct(const FaissIndex *index, idx_t key,
                            float *recons) {
  return guarded([&] {
    need(index, "index");
    need(recons, "recons");
    check_stored_range(idx(index), key, 1);
    idx(index)->reconstruct(key, recons);
  });
}

int faiss_Index_reconstruct_n(const FaissIndex *index, idx_t i0, idx_t ni,
                              float *recons) {
  return guarded([&] {
    need(index, "index");
    need_count(ni, "ni");
    if (ni > 0) need(recons, "recons");
    check_stored_range(idx(index), i0, ni);
    idx(index)->reconstruct_n(i0, ni, recons);
  });
}

/* ---- SearchParameters ------------------------------------------------- */

void faiss_SearchParameters_free(FaissSearchParameters *obj) {
  delete sp_of(obj);
}

int faiss_SearchParameters_new(FaissSearchParameters **p_sp,
                               FaissIDSelector *sel) {
  return guarded([&] {
    need(p_sp, "p_sp");
    auto *sp = new faiss::SearchParameters;
    sp->sel = reinterpret_cast<faiss::IDSelector *>(sel);
    *p_sp = reinterpret_cast<FaissSearchParameters *>(sp);
  });
}

/* ======================================================================
 * impl/AuxIndexStructures_c.h: id selectors
 * ====================================================================== */

void faiss_IDSelector_free(FaissIDSelector *obj) {
  delete reinterpret_cast<faiss::IDSelector *>(obj);
}

int faiss_IDSelector_is_member(const FaissIDSelector *sel, idx_t id) {
  return sel && sel_of(sel)->is_member(id) ? 1 : 0;
}

void faiss_IDSelectorRange_free(FaissIDSelectorRange *obj) {
  faiss_IDSelector_free(reinterpret_cast<FaissIDSelector *>(obj));
}

idx_t faiss_IDSelectorRange_imin(const FaissIDSelectorRange *sel) {
  auto *r = dynamic_cast<const faiss::IDSelectorRange *>(
      reinterpret_cast<const faiss::IDSelector *>(sel));
  return r ? r->imin : 0;
}
idx_t faiss_IDSelectorRange_imax(const FaissIDSelectorRange *sel) {
  auto *r = dynamic_cast<const faiss::IDSelectorRange *>(
      reinterpret_cast<const faiss::IDSelector *>(sel));
  return r ? r->imax : 0;
}

int faiss_IDSelectorRange_new(FaissIDSelectorRange **p_sel, idx_t imin,
                              idx_t imax) {
  return guarded([&] {
    need(p_sel, "p_sel");
    faiss::IDSelector *s = new faiss::IDSelectorRange(imin, imax);
    *p_sel = reinterpret_cast<FaissIDSelectorRange *>(s);
  });
}

int faiss_IDSelectorBatch_nbits(const FaissIDSelectorBatch *sel) {
  auto *b = dynamic_cast<const faiss::IDSelectorBatch *>(
      reinterpret_cast<const faiss::IDSelector *>(sel));
  return b ? b->nbits : 0;
}
idx_t faiss_IDSelectorBatch_mask(const FaissIDSelectorBatch *sel) {
  auto *b = dynamic_cast<const faiss::IDSelectorBatch *>(
      reinterpret_cast<const faiss::IDSelector *>(sel));
  return b ? b->mask : 0;
}

int faiss_IDSelectorBatch_new(FaissIDSelectorBatch **p_sel, size_t n,
                              const idx_t *indices) {
  return guarded([&] {
    need(p_sel, "p_sel");
    if (n > 0) need(indices, "indices");
    faiss::IDSelector *s = new faiss::IDSelectorBatch(n, indices);
    *p_sel = reinterpret_cast<FaissIDSelectorBatch *>(s);
  });
}

void faiss_IDSelectorBitmap_free(FaissIDSelectorBitmap *obj) {
  faiss_IDSelector_free(reinterpret_cast<FaissIDSelector *>(obj));
}

size_t faiss_IDSelectorBitmap_n(const FaissIDSelectorBitmap *sel) {
  auto *b = dynamic_cast<const faiss::IDSelectorBitmap *>(
      reinterpret_cast<const faiss::IDSelector *>(sel));
  return b ? b->n : 0;
}
const uint8_t *faiss_IDSelectorBitmap_bitmap(const FaissIDSelectorBitmap *sel) {
  auto *b = dynamic_cast<const faiss::IDSelectorBitmap *>(
      reinterpret_cast<const faiss::IDSelector *>(sel));
  return b ? b->bitmap : nullptr;
}

int faiss_IDSelectorBitmap_new(FaissIDSelectorBitmap **p_sel, size_t n,
                               const uint8_t *bitmap) {
  return guarded([&] {
    need(p_sel, "p_sel");
    if (n > 0) need(bitmap, "bitmap");
    faiss::IDSelector *s = new faiss::IDSelectorBitmap(n, bitmap);
    *p_sel = reinterpret_cast<FaissIDSelectorBitmap *>(s);
  });
}

int faiss_IDSelectorNot_new(FaissIDSelectorNot **p_sel,
                            const FaissIDSelector *sel) {
  return guarded([&] {
    need(p_sel, "p_sel");
    need(sel, "sel");
    faiss::IDSelector *s = new faiss::IDSelectorNot(sel_of(sel));
    *p_sel = reinterpret_cast<FaissIDSelectorNot *>(s);
  });
}

int faiss_IDSelectorAnd_new(FaissIDSelectorAnd **p_sel,
                            const FaissIDSelector *lhs_sel,
                            const FaissIDSelector *rhs_sel) {
  return guarded([&] {
    need(p_sel, "p_sel");
    faiss::IDSelector *s = new SelAnd(sel_of(need(lhs_sel, "lhs_sel")),
                                      sel_of(need(rhs_sel, "rhs_sel")));
    *p_sel = reinterpret_cast<FaissIDSelectorAnd *>(s);
  });
}

int faiss_IDSelectorOr_new(FaissIDSelectorOr **p_sel,
                           const FaissIDSelector *lhs_sel,
                           const FaissIDSelector *rhs_sel) {
  return guarded([&] {
    need(p_sel, "p_sel");
    faiss::IDSelector *s = new SelOr(sel_of(need(lhs_sel, "lhs_sel")),
                                     sel_of(need(rhs_sel, "rhs_sel")));
    *p_sel = reinterpret_cast<FaissIDSelectorOr *>(s);
  });
}

int faiss_IDSelectorXOr_new(FaissIDSelectorXOr **p_sel,
                            const FaissIDSelector *lhs_sel,
                            const FaissIDSelector *rhs_sel) {
  return guarded([&] {
    need(p_sel, "p_sel");
    faiss::IDSelector *s = new SelXOr(sel_of(need(lhs_sel, "lhs_sel")),
                                      sel_of(need(rhs_sel, "rhs_sel")));
    *p_sel = reinterpret_cast<FaissIDSelectorXOr *>(s);
  });
}

/* ======================================================================
 * IndexFlat_c.h
 * ====================================================================== */

int faiss_IndexFlat_new(FaissIndexFlat **p_index) {
  return guarded([&] {
    need(p_index, "p_index");
    *p_index = handle(new faiss::IndexFlat());
  });
}

int faiss_IndexFlat_new_with(FaissIndexFlat **p_index, idx_t d,
                             FaissMetricType metric) {
  return guarded([&] {
    need(p_index, "p_index");
    check_dim(d);
    *p_index = handle(new faiss::IndexFlat(d, metric_of(metric)));
  });
}

void faiss_IndexFlat_xb(FaissIndexFlat *index, float **p_xb, size_t *p_size) {
  faiss::IndexFlat *f = as<faiss::IndexFlat>(index);
  if (p_xb) *p_xb = f ? f->get_xb() : nullptr;
  if (p_size) *p_size = f ? f->codes.size() / sizeof(float) : 0;
}

FaissIndexFlat *faiss_IndexFlat_cast(FaissIndex *index) {
  return as<faiss::IndexFlat>(index) ? index : nullptr;
}
void faiss_IndexFlat_free(FaissIndexFlat *obj) { faiss_Index_free(obj); }

FaissIndexFlatIP *faiss_IndexFlatIP_cast(FaissIndex *index) {
  return as<faiss::IndexFlatIP>(index) ? index : nullptr;
}
void faiss_IndexFlatIP_free(FaissIndexFlatIP *obj) { faiss_Index_free(obj); }

int faiss_IndexFlatIP_new(FaissIndexFlatIP **p_index) {
  return guarded([&] {
    need(p_index, "p_index");
    *p_index = handle(new faiss::IndexFlatIP());
  });
}

FaissIndexFlatL2 *faiss_IndexFlatL2_cast(FaissIndex *index) {
  return as<faiss::IndexFlatL2>(index) ? index : nullptr;
}
void faiss_IndexFlatL2_free(FaissIndexFlatL2 *obj) { faiss_Index_free(obj); }

int faiss_IndexFlatL2_new(FaissIndexFlatL2 **p_index) {
  return guarded([&] {
    need(p_index, "p_index");
    *p_index = handle(new faiss::IndexFlatL2());
  });
}

/* ======================================================================
 * IndexIVF_c.h
 * ====================================================================== */

FaissIndexIVF *faiss_IndexIVF_cast(FaissIndex *index) {
  return as<faiss::IndexIVF>(index) ? index : nullptr;
}
void faiss_IndexIVF_free(FaissIndexIVF *obj) { faiss_Index_free(obj); }

size_t faiss_IndexIVF_nlist(const FaissIndexIVF *index) {
  const faiss::IndexIVF *ivf = as<faiss::IndexIVF>(index);
  return ivf ? ivf->nlist : 0;
}
size_t faiss_IndexIVF_nprobe(const FaissIndexIVF *index) {
  const faiss::IndexIVF *ivf = as<faiss::IndexIVF>(index);
  return ivf ? ivf->nprobe : 0;
}
void faiss_IndexIVF_set_nprobe(FaissIndexIVF *index, size_t nprobe) {
  faiss::IndexIVF *ivf = as<faiss::IndexIVF>(index);
  if (ivf) ivf->nprobe = nprobe;
}
FaissIndex *faiss_IndexIVF_quantizer(const FaissIndexIVF *index) {
  const faiss::IndexIVF *ivf = as<faiss::IndexIVF>(index);
  return ivf ? handle(ivf->quantizer) : nullptr;
}
char faiss_IndexIVF_quantizer_trains_alone(const FaissIndexIVF *index) {
  const faiss::IndexIVF *ivf = as<faiss::IndexIVF>(index);
  return ivf ? ivf->quantizer_trains_alone : 0;
}
int faiss_IndexIVF_own_fields(const FaissIndexIVF *index) {
  const faiss::IndexIVF *ivf = as<faiss::IndexIVF>(index);
  return ivf ? static_cast<int>(ivf->own_fields) : 0;
}
void faiss_IndexIVF_set_own_fields(FaissIndexIVF *index, int own_fields) {
  faiss::IndexIVF *ivf = as<faiss::IndexIVF>(index);
  if (ivf) ivf->own_fields = own_fields != 0;
}

int faiss_IndexIVF_search_preassigned(const FaissIndexIVF *index, idx_t n,
                                      const float *x, idx_t k,
                                      const idx_t *assign,
                                      const float *centroid_dis,
                                      float *distances, idx_t *labels,
                                      int store_pairs) {
  return guarded([&] {
    const faiss::IndexIVF *ivf = must<faiss::IndexIVF>(index, "IndexIVF");
    need_count(n, "n");
    if (k <= 0) throw std::invalid_argument("k must be positive");
    if (n > 0) {
      need(x, "x");
      need(assign, "assign");
      need(centroid_dis, "centroid_dis");
      need(distances, "distances");
      need(labels, "labels");
    }
    ivf->search_preassigned(n, x, k, assign, centroid_dis, distances, labels,
                            store_pairs != 0);
  });
}

size_t faiss_IndexIVF_get_list_size(const FaissIndexIVF *index,
                                    size_t list_no) {
  const faiss::IndexIVF *ivf = as<faiss::IndexIVF>(index);
  if (!ivf || !ivf->invlists || list_no >= ivf->nlist) return 0;
  return ivf->invlists->list_size(list_no);
}

int faiss_IndexIVF_make_direct_map(FaissIndexIVF *index,
                                   int new_maintain_direct_map) {
  return guarded([&] {
    must<faiss::IndexIVF>(index, "IndexIVF")
        ->make_direct_map(new_maintain_direct_map != 0);
  });
}

double faiss_IndexIVF_imbalance_factor(const FaissIndexIVF *index) {
  const faiss::IndexIVF *ivf = as<faiss::IndexIVF>(index);
  if (!ivf || !ivf->invlists) return 0.0;
  try {
    return ivf->invlists->imbalance_factor();
  } catch (...) {
    return 0.0;
  }
}

/* Upstream has no error channel here: a bad handle or list number leaves
 * invlist untouched (check faiss_IndexIVF_get_list_size first). */
void faiss_IndexIVF_invlists_get_ids(const FaissIndexIVF *index,
                                     size_t list_no, idx_t *invlist) {
  const faiss::IndexIVF *ivf = as<faiss::IndexIVF>(index);
  if (!ivf || !ivf->invlists || !invlist || list_no >= ivf->nlist) return;
  try {
    size_t n = ivf->invlists->list_size(list_no);
    if (n == 0) return;
    faiss::InvertedLists::ScopedIds ids(ivf->invlists, list_no);
    std::memcpy(invlist, ids.get(), n * sizeof(idx_t));
  } catch (...) {
    set_error("faiss_IndexIVF_invlists_get_ids: cannot read list");
  }
}

/* ---- warden extensions ------------------------------------------------ */

size_t faiss_IndexIVF_code_size(const FaissIndexIVF *index) {
  const faiss::IndexIVF *ivf = as<faiss::IndexIVF>(index);
  return ivf ? ivf->code_size : 0;
}

int faiss_IndexIVF_invlists_get_codes(const FaissIndexIVF *index,
                                      size_t list_no, uint8_t *codes,
                                      size_t codes_size) {
  return guarded([&] {
    const faiss::IndexIVF *ivf = must<faiss::IndexIVF>(index, "IndexIVF");
    if (!ivf->invlists) throw std::invalid_argument("index has no lists");
    if (list_no >= ivf->nlist)
      throw std::invalid_argument("list_no out of range");
    size_t n = ivf->invlists->list_size(list_no);
    size_t bytes = n * ivf->code_size;
    if (bytes > codes_size)
      throw std::invalid_argument("codes buffer too small");
    if (bytes == 0) return;
    need(codes, "codes");
    faiss::InvertedLists::ScopedCodes c(ivf->invlists, list_no);
    std::memcpy(codes, c.get(), bytes);
  });
}

/* ---- SearchParametersIVF ---------------------------------------------- */

void faiss_SearchParametersIVF_free(FaissSearchParametersIVF *obj) {
  delete sp_of(obj);
}

FaissSearchParametersIVF *faiss_SearchParametersIVF_cast(
    FaissSearchParameters *sp) {
  return spivf_of(sp) ? sp : nullptr;
}

int faiss_SearchParametersIVF_new(FaissSearchParametersIVF **p_sp) {
  return guarded([&] {
    need(p_sp, "p_sp");
    faiss::SearchParameters *sp = new faiss::SearchParametersIVF;
    *p_sp = reinterpret_cast<FaissSearchParametersIVF *>(sp);
  });
}

int faiss_SearchParametersIVF_new_with(FaissSearchParametersIVF **p_sp,
                                       FaissIDSelector *sel, size_t nprobe,
                                       size_t max_codes) {
  return guarded([&] {
    need(p_sp, "p_sp");
    auto *sp = new faiss::SearchParametersIVF;
    sp->sel = reinterpret_cast<faiss::IDSelector *>(sel);
    sp->nprobe = nprobe;
    sp->max_codes = max_codes;
    *p_sp = reinterpret_cast<FaissSearchParametersIVF *>(
        static_cast<faiss::SearchParameters *>(sp));
  });
}

const FaissIDSelector *faiss_SearchParametersIVF_sel(
    const FaissSearchParametersIVF *sp) {
  const faiss::SearchParametersIVF *p = spivf_of(sp);
  return p ? reinterpret_cast<const FaissIDSelector *>(
                 static_cast<const faiss::IDSelector *>(p->sel))
           : nullptr;
}
size_t faiss_SearchParametersIVF_nprobe(const FaissSearchParametersIVF *sp) {
  const faiss::SearchParametersIVF *p = spivf_of(sp);
  return p ? p->nprobe : 0;
}
void faiss_SearchParametersIVF_set_nprobe(FaissSearchParametersIVF *sp,
                                          size_t nprobe) {
  faiss::SearchParametersIVF *p = spivf_of(sp);
  if (p) p->nprobe = nprobe;
}
size_t faiss_SearchParametersIVF_max_codes(const FaissSearchParametersIVF *sp) {
  const faiss::SearchParametersIVF *p = spivf_of(sp);
  return p ? p->max_codes : 0;
}
void faiss_SearchParametersIVF_set_max_codes(FaissSearchParametersIVF *sp,
                                             size_t max_codes) {
  faiss::SearchParametersIVF *p = spivf_of(sp);
  if (p) p->max_codes = max_codes;
}

/* ======================================================================
 * IndexIVFFlat_c.h
 * ====================================================================== */

FaissIndexIVFFlat *faiss_IndexIVFFlat_cast(FaissIndex *index) {
  return as<faiss::IndexIVFFlat>(index) ? index : nullptr;
}
void faiss_IndexIVFFlat_free(FaissIndexIVFFlat *obj) { faiss_Index_free(obj); }

size_t faiss_IndexIVFFlat_nlist(const FaissIndexIVFFlat *index) {
  return faiss_IndexIVF_nlist(index);
}
size_t faiss_IndexIVFFlat_nprobe(const FaissIndexIVFFlat *index) {
  return faiss_IndexIVF_nprobe(index);
}
void faiss_IndexIVFFlat_set_nprobe(FaissIndexIVFFlat *index, size_t nprobe) {
  faiss_IndexIVF_set_nprobe(index, nprobe);
}
FaissIndex *faiss_IndexIVFFlat_quantizer(const FaissIndexIVFFlat *index) {
  return faiss_IndexIVF_quantizer(index);
}
char faiss_IndexIVFFlat_quantizer_trains_alone(const FaissIndexIVFFlat *index) {
  return faiss_IndexIVF_quantizer_trains_alone(index);
}
int faiss_IndexIVFFlat_own_fields(const FaissIndexIVFFlat *index) {
  return faiss_IndexIVF_own_fields(index);
}
void faiss_IndexIVFFlat_set_own_fields(FaissIndexIVFFlat *index, int own) {
  faiss_IndexIVF_set_own_fields(index, own);
}

int faiss_IndexIVFFlat_new(FaissIndexIVFFlat **p_index) {
  return guarded([&] {
    need(p_index, "p_index");
    auto *ivf = new faiss::IndexIVFFlat();
    quiet_training(ivf);
    *p_index = handle(ivf);
  });
}

int faiss_IndexIVFFlat_new_with_metric(FaissIndexIVFFlat **p_index,
                                       FaissIndex *quantizer, size_t d,
                                       size_t nlist, FaissMetricType metric) {
  return guarded([&] {
    need(p_index, "p_index");
    need(quantizer, "quantizer");
    check_dim(static_cast<idx_t>(d));
    if (nlist == 0) throw std::invalid_argument("nlist must be positive");
    auto *ivf =
        new faiss::IndexIVFFlat(idx(quantizer), d, nlist, metric_of(metric));
    quiet_training(ivf);
    *p_index = handle(ivf);
  });
}

int faiss_IndexIVFFlat_new_with(FaissIndexIVFFlat **p_index,
                                FaissIndex *quantizer, size_t d,
                                size_t nlist) {
  return faiss_IndexIVFFlat_new_with_metric(p_index, quantizer, d, nlist,
                                            METRIC_L2);
}

/* ======================================================================
 * IndexScalarQuantizer_c.h
 * ====================================================================== */

int faiss_IndexScalarQuantizer_new(FaissIndexScalarQuantizer **p_index) {
  return guarded([&] {
    need(p_index, "p_index");
    *p_index = handle(new faiss::IndexScalarQuantizer());
  });
}

int faiss_IndexScalarQuantizer_new_with(FaissIndexScalarQuantizer **p_index,
                                        idx_t d, FaissQuantizerType qt,
                                        FaissMetricType metric) {
  return guarded([&] {
    need(p_index, "p_index");
    check_dim(d);
    *p_index = handle(
        new faiss::IndexScalarQuantizer(d, qtype_of(qt), metric_of(metric)));
  });
}

FaissIndexScalarQuantizer *faiss_IndexScalarQuantizer_cast(FaissIndex *index) {
  return as<faiss::IndexScalarQuantizer>(index) ? index : nullptr;
}
void faiss_IndexScalarQuantizer_free(FaissIndexScalarQuantizer *obj) {
  faiss_Index_free(obj);
}

FaissIndexIVFScalarQuantizer *faiss_IndexIVFScalarQuantizer_cast(
    FaissIndex *index) {
  return as<faiss::IndexIVFScalarQuantizer>(index) ? index : nullptr;
}
void faiss_IndexIVFScalarQuantizer_free(FaissIndexIVFScalarQuantizer *obj) {
  faiss_Index_free(obj);
}

int faiss_IndexIVFScalarQuantizer_new(FaissIndexIVFScalarQuantizer **p_index) {
  return guarded([&] {
    need(p_index, "p_index");
    auto *ivf = new faiss::IndexIVFScalarQuantizer();
    quiet_training(ivf);
    *p_index = handle(ivf);
  });
}

int faiss_IndexIVFScalarQuantizer_new_with_metric(
    FaissIndexIVFScalarQuantizer **p_index, FaissIndex *quantizer, size_t d,
    size_t nlist, FaissQuantizerType qt, FaissMetricType metric,
    int encode_residual) {
  return guarded([&] {
    need(p_index, "p_index");
    need(quantizer, "quantizer");
    check_dim(static_cast<idx_t>(d));
    if (nlist == 0) throw std::invalid_argument("nlist must be positive");
    auto *ivf = new faiss::IndexIVFScalarQuantizer(
        idx(quantizer), d, nlist, qtype_of(qt), metric_of(metric),
        encode_residual != 0);
    quiet_training(ivf);
    *p_index = handle(ivf);
  });
}

int faiss_IndexIVFScalarQuantizer_new_with(
    FaissIndexIVFScalarQuantizer **p_index, FaissIndex *quantizer, idx_t d,
    size_t nlist, FaissQuantizerType qt) {
  if (d < 0) {
    set_error("dimension out of range");
    return -4;
  }
  return faiss_IndexIVFScalarQuantizer_new_with_metric(
      p_index, quantizer, static_cast<size_t>(d), nlist, qt, METRIC_L2, 1);
}

size_t faiss_IndexIVFScalarQuantizer_nlist(
    const FaissIndexIVFScalarQuantizer *index) {
  return faiss_IndexIVF_nlist(index);
}
size_t faiss_IndexIVFScalarQuantizer_nprobe(
    const FaissIndexIVFScalarQuantizer *index) {
  return faiss_IndexIVF_nprobe(index);
}
void faiss_IndexIVFScalarQuantizer_set_nprobe(
    FaissIndexIVFScalarQuantizer *index, size_t nprobe) {
  faiss_IndexIVF_set_nprobe(index, nprobe);
}
FaissIndex *faiss_IndexIVFScalarQuantizer_quantizer(
    const FaissIndexIVFScalarQuantizer *index) {
  return faiss_IndexIVF_quantizer(index);
}
int faiss_IndexIVFScalarQuantizer_own_fields(
    const FaissIndexIVFScalarQuantizer *index) {
  return faiss_IndexIVF_own_fields(index);
}
void faiss_IndexIVFScalarQuantizer_set_own_fields(
    FaissIndexIVFScalarQuantizer *index, int own) {
  faiss_IndexIVF_set_own_fields(index, own);
}

/* ======================================================================
 * MetaIndexes_c.h: IndexIDMap (flat indexes cannot store arbitrary ids)
 * ====================================================================== */

int faiss_IndexIDMap_new(FaissIndexIDMap **p_index, FaissIndex *index) {
  return guarded([&] {
    need(p_index, "p_index");
    need(index, "index");
    *p_index = handle(new faiss::IndexIDMap(idx(index)));
  });
}

FaissIndexIDMap *faiss_IndexIDMap_cast(FaissIndex *index) {
  return as<faiss::IndexIDMap>(index) ? index : nullptr;
}

int faiss_IndexIDMap_own_fields(const FaissIndexIDMap *index) {
  const faiss::IndexIDMap *m = as<faiss::IndexIDMap>(index);
  return m ? static_cast<int>(m->own_fields) : 0;
}
void faiss_IndexIDMap_set_own_fields(FaissIndexIDMap *index, int own) {
  faiss::IndexIDMap *m = as<faiss::IndexIDMap>(index);
  if (m) m->own_fields = own != 0;
}

void faiss_IndexIDMap_id_map(FaissIndexIDMap *index, idx_t **p_id_map,
                             size_t *p_size) {
  faiss::IndexIDMap *m = as<faiss::IndexIDMap>(index);
  if (p_id_map) *p_id_map = m ? m->id_map.data() : nullptr;
  if (p_size) *p_size = m ? m->id_map.size() : 0;
}

FaissIndex *faiss_IndexIDMap_sub_index(FaissIndexIDMap *index) {
  faiss::IndexIDMap *m = as<faiss::IndexIDMap>(index);
  return m ? handle(m->index) : nullptr;
}

/* ======================================================================
 * Clustering_c.h
 * ====================================================================== */

#define WD_CLUSTERING_GETTER(ty, name)                                 \
  ty faiss_Clustering_##name(const FaissClustering *c) {              \
    return c ? static_cast<ty>(                                        \
                   reinterpret_cast<const faiss::Clustering *>(c)->name) \
             : ty();                                                   \
  }
WD_CLUSTERING_GETTER(int, niter)
WD_CLUSTERING_GETTER(int, nredo)
WD_CLUSTERING_GETTER(int, verbose)
WD_CLUSTERING_GETTER(int, spherical)
WD_CLUSTERING_GETTER(int, int_centroids)
WD_CLUSTERING_GETTER(int, update_index)
WD_CLUSTERING_GETTER(int, frozen_centroids)
WD_CLUSTERING_GETTER(int, min_points_per_centroid)
WD_CLUSTERING_GETTER(int, max_points_per_centroid)
WD_CLUSTERING_GETTER(int, seed)
WD_CLUSTERING_GETTER(size_t, decode_block_size)
WD_CLUSTERING_GETTER(size_t, d)
WD_CLUSTERING_GETTER(size_t, k)
#undef WD_CLUSTERING_GETTER

int faiss_Clustering_new(FaissClustering **p_clustering, int d, int k) {
  return guarded([&] {
    need(p_clustering, "p_clustering");
    check_dim(d);
    if (k <= 0) throw std::invalid_argument("k must be positive");
    *p_clustering =
        reinterpret_cast<FaissClustering *>(new faiss::Clustering(d, k));
  });
}

/* Same result as faiss::kmeans_clustering (default parameters, L2), but
 * without FAISS's stderr warning when n < 39 * k. */
int faiss_kmeans_clustering(size_t d, size_t n, size_t k, const float *x,
                            float *centroids, float *q_error) {
  return guarded([&] {
    check_dim(static_cast<idx_t>(d));
    if (k == 0 || k > (size_t)INT32_MAX)
      throw std::invalid_argument("k out of range");
    if (n > 0) need(x, "x");
    need(centroids, "centroids");
    faiss::ClusteringParameters cp;
    cp.min_points_per_centroid = 1;
    faiss::Clustering clus(static_cast<int>(d), static_cast<int>(k), cp);
    faiss::IndexFlatL2 assigner(static_cast<idx_t>(d));
    clus.train(static_cast<idx_t>(n), x, assigner);
    std::memcpy(centroids, clus.centroids.data(), sizeof(float) * d * k);
    if (q_error)
      *q_error = clus.iteration_stats.empty() ? 0.0f
                                              : clus.iteration_stats.back().obj;
  });
}

/* ======================================================================
 * clone_index_c.h, index_io_c.h
 * ====================================================================== */

int faiss_clone_index(const FaissIndex *index, FaissIndex **p_out) {
  return guarded([&] {
    need(index, "index");
    need(p_out, "p_out");
    *p_out = handle(faiss::clone_index(idx(index)));
  });
}

int faiss_write_index(const FaissIndex *index, FILE *f) {
  return guarded([&] {
    need(index, "index");
    need(f, "f");
    faiss::write_index(idx(index), f);
  });
}

int faiss_write_index_fname(const FaissIndex *index, const char *fname) {
  return guarded([&] {
    need(index, "index");
    need(fname, "fname");
    faiss::write_index(idx(index), fname);
  });
}

int faiss_read_index(FILE *f, int io_flags, FaissIndex **p_out) {
  return guarded([&] {
    need(f, "f");
    need(p_out, "p_out");
    *p_out = handle(faiss::read_index(f, io_flags));
  });
}

int faiss_read_index_fname(const char *fname, int io_flags,
                           FaissIndex **p_out) {
  return guarded([&] {
    need(fname, "fname");
    need(p_out, "p_out");
    *p_out = handle(faiss::read_index(fname, io_flags));
  });
}

}  // extern "C"
