/*
 * worker.h -- one helper thread running queued jobs in order (worker.c).
 *
 * The ingest pipeline (engine/ingest.c) parses the next batches on it
 * while the calling thread, which owns the LMDB write transaction, applies
 * earlier ones.  wd_worker_run queues a job (waiting while WD_WORKER_QMAX
 * are queued or running) and returns its ticket, 1, 2, 3, ... in order;
 * wd_worker_wait_for(t) returns once job t and all before it have
 * returned.  What a job wrote is visible to the thread that waited for it
 * (the handover is a mutex).
 */
#ifndef WD_WORKER_H
#define WD_WORKER_H
#include <pthread.h>
#include <stdint.h>

#define WD_WORKER_QMAX 4

typedef struct wd_worker {
  pthread_t t;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int started; /* the thread exists */
  int quit;
  struct {
    void (*fn)(void *arg);
    void *arg;
  } q[WD_WORKER_QMAX];
  uint64_t queued, done; /* jobs given, jobs returned */
} wd_worker;

/* Start the thread.  0, or -1 (no thread: the caller does the work
 * itself; w is then as if never started). */
int wd_worker_start(wd_worker *w);
/* Queue fn(arg); its ticket. */
uint64_t wd_worker_run(wd_worker *w, void (*fn)(void *arg), void *arg);
/* Wait until job ticket (and every earlier one) has returned. */
void wd_worker_wait_for(wd_worker *w, uint64_t ticket);
/* Wait until every queued job has returned. */
void wd_worker_wait(wd_worker *w);
/* Run what is queued, end the thread and free w's resources (a w that
 * was never started is left alone). */
void wd_worker_stop(wd_worker *w);

#endif
