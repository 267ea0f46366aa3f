/* ledger.h: the persist_ledger insert shared by the rollup workers.
 *
 * Each stream entry a worker applies has a ledger key (lib/entry.h,
 * SX_ENTRY_KEY_LEN bytes). One statement inserts the keys of a batch into
 * persist_ledger (stream, entry_hash, entry_id) in key order (two instances
 * never deadlock on them), ON CONFLICT DO NOTHING RETURNING the keys that are
 * new; an item whose key came back is "fresh": it has not been applied
 * before and the caller applies it in the same transaction. */
#ifndef SX_LEDGER_H
#define SX_LEDGER_H

#include "buf.h"
#include "entry.h"
#include "sx.h"

#include <libpq-fe.h>
#include <stdint.h>

struct sx_ledger_item {
    const uint8_t *key; /* SX_ENTRY_KEY_LEN bytes */
    const char *id;     /* stream entry id (at most 63 bytes of it are stored) */
    size_t idlen;
    int fresh;          /* set by sx_ledger_insert: its row is new */
};

/* Inserts the ledger rows of items[0..n) for stream within the caller's
 * transaction and sets fresh on the items whose row is new; of items with
 * equal keys only the first (lowest index: first in the stream) may be
 * fresh. scratch holds the array parameters (its max bounds them). Returns
 * the number of items not fresh, or -1 (out of memory, over scratch's max,
 * or the statement failed: logged). n == 0 still runs the statement. */
long long sx_ledger_insert(PGconn *pg, const char *stream, struct sx_ledger_item *items, size_t n,
                           struct sx_buf *scratch);

#endif
