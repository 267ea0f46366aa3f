/* rollup_red.h: sextant-rollup's span RED rollup (workers/rollup_red.c), a thread of its own beside
 * the metrics loop of workers/rollup.c. */
#ifndef SX_ROLLUP_RED_H
#define SX_ROLLUP_RED_H

#include "config.h"

/* Starts the span rollup thread: it reads the spans stream (group "rollup",
 * consumer "rollup-<instance>") with its own Redis and PostgreSQL
 * connections until sx_rollup_red_stop. cfg must outlive the thread.
 * SX_ERR (logged) when the thread could not be started. */
int sx_rollup_red_start(const struct sx_config *cfg, const char *instance);

/* Asks the thread to finish its current batch and waits for it (up to
 * about persist_block_ms). Does nothing when it was not started. */
void sx_rollup_red_stop(void);

#endif
