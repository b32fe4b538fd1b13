/*
 * faiss_capi_impl.h -- what the two halves of our FAISS C API share (C++
 * only; not part of the API).
 *
 * index/faiss_capi.cpp implements the functions the library calls;
 * bench/faiss_capi_extra.cpp, linked into the benchmark and test binaries
 * only, implements the rest of faiss_capi.h.  Both record errors through
 * set_error() -- one per-thread buffer, defined in faiss_capi.cpp, which
 * faiss_get_last_error() returns -- and go through the same exception
 * boundary (guarded) and argument checks, kept here so they are written
 * once.
 */
#ifndef WD_FAISS_CAPI_IMPL_H
#define WD_FAISS_CAPI_IMPL_H

#ifndef __cplusplus
#error "faiss_capi_impl.h is C++ only"
#endif

/* Debian 1.7.3's headers compile clean with gcc 12 / clang 14 at
 * -Wall -Wextra; the guard is for other FAISS versions, whose headers
 * have tripped -Wextra before. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wextra"
#include <faiss/Index.h>
#include <faiss/impl/FaissException.h>
#pragma GCC diagnostic pop

#include <exception>
#include <stdexcept>
#include <string>

#include "index/faiss_capi.h"

namespace wd_faiss {

/* Record msg as this thread's faiss_get_last_error() (never throws). */
void set_error(const char *msg) noexcept;

/* Runs f, mapping exceptions to upstream's codes (-2 FAISS, -4 std, -1
 * other).  Every int-returning entry point goes through here. */
template <class F>
int guarded(F &&f) noexcept {
  try {
    f();
    return 0;
  } catch (const faiss::FaissException &e) {
    set_error(e.what());
    return -2;
  } catch (const std::exception &e) {
    set_error(e.what());
    return -4;
  } catch (...) {
    set_error("unknown C++ exception");
    return -1;
  }
}

template <class T>
T *need(T *p, const char *what) {
  if (!p) throw std::invalid_argument(std::string(what) + " is NULL");
  return p;
}

inline void need_count(idx_t n, const char *what) {
  if (n < 0) throw std::invalid_argument(std::string(what) + " is negative");
}

/* ---- handle conversions ---------------------------------------------- */

inline faiss::Index *idx(FaissIndex *h) { return reinterpret_cast<faiss::Index *>(h); }
inline const faiss::Index *idx(const FaissIndex *h) {
  return reinterpret_cast<const faiss::Index *>(h);
}

inline FaissIndex *handle(faiss::Index *p) { return reinterpret_cast<FaissIndex *>(p); }

inline void check_dim(idx_t d) {
  if (d <= 0 || d > (1 << 20))
    throw std::invalid_argument("dimension out of range");
}

}  // namespace wd_faiss

#endif /* WD_FAISS_CAPI_IMPL_H */
