/*
 * worker.c -- one helper thread, queued jobs run in order (see worker.h).
 */
#include "base/worker.h"

#include <string.h>

static void *loop(void *arg) {
  wd_worker *w = arg;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (w->done == w->queued && !w->quit) pthread_cond_wait(&w->cv, &w->mu);
    if (w->done == w->queued) break; /* quit, and nothing left to do */
    unsigned k = (unsigned)(w->done % WD_WORKER_QMAX);
    void (*fn)(void *) = w->q[k].fn;
    void *a = w->q[k].arg;
    pthread_mutex_unlock(&w->mu);
    fn(a);
    pthread_mutex_lock(&w->mu);
    w->done++;
    pthread_cond_broadcast(&w->cv);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

int wd_worker_start(wd_worker *w) {
  memset(w, 0, sizeof *w);
  if (pthread_mutex_init(&w->mu, NULL) != 0) return -1;
  if (pthread_cond_init(&w->cv, NULL) != 0) {
    pthread_mutex_destroy(&w->mu);
    return -1;
  }
  if (pthread_create(&w->t, NULL, loop, w) != 0) {
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    return -1;
  }
  w->started = 1;
  return 0;
}

uint64_t wd_worker_run(wd_worker *w, void (*fn)(void *arg), void *arg) {
  pthread_mutex_lock(&w->mu);
  while (w->queued - w->done == WD_WORKER_QMAX) pthread_cond_wait(&w->cv, &w->mu);
  unsigned k = (unsigned)(w->queued % WD_WORKER_QMAX);
  w->q[k].fn = fn;
  w->q[k].arg = arg;
  uint64_t t = ++w->queued;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  return t;
}

void wd_worker_wait_for(wd_worker *w, uint64_t ticket) {
  if (!w->started) return;
  pthread_mutex_lock(&w->mu);
  while (w->done < ticket) pthread_cond_wait(&w->cv, &w->mu);
  pthread_mutex_unlock(&w->mu);
}

void wd_worker_wait(wd_worker *w) {
  if (!w->started) return;
  pthread_mutex_lock(&w->mu);
  while (w->done < w->queued) pthread_cond_wait(&w->cv, &w->mu);
  pthread_mutex_unlock(&w->mu);
}

void wd_worker_stop(wd_worker *w) {
  if (!w->started) return;
  pthread_mutex_lock(&w->mu);
  w->quit = 1;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->t, NULL);
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  w->started = 0;
}
