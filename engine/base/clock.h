/*
 * clock.h -- the monotonic clock libwarden times its own work with
 * (progress reports, resolver budgets, the planner's measured prices).
 */
#ifndef WD_CLOCK_H
#define WD_CLOCK_H
#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC (an arbitrary origin). */
static inline double wd_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#endif
