/* labels.c — a latent's label (the labels table, mirrored in the catalog): one
 * line of UTF-8 text per latent, checked before anything is written. */
#include <lmdb.h>
#include <string.h>

#include "../common/utf8.h"
#include "db_impl.h"

int ldb_db_label(ldb_db *db, const char *dict, uint32_t latent, const char *text)
{
    const ldb_dbdict *dd = ldb_db_find_dict(db, dict);
    MDB_txn *txn = NULL;
    if (!dd)
        return LDB_ENOTFOUND;
    if (latent >= dd->d_sae)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "latent %u is out of range: '%s' has %u latents",
                           latent, dict, dd->d_sae);
    size_t len = strlen(text);
    uint32_t cp;
    size_t at = ldb_utf8_check((const uint8_t *)text, len, 1, &cp);
    if (at < len && cp == LDB_UTF8_BAD)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "label of '%s' latent %u: not valid UTF-8 at "
                           "byte %zu (0x%02X); a label is UTF-8 text", dict, latent, at,
                           (unsigned)(uint8_t)text[at]);
    if (at < len)
        return ldb_err_set(ldb_db_err(db), LDB_EINVAL, "label of '%s' latent %u: control character "
                           "U+%04X at byte %zu; a label is one line of text", dict, latent,
                           (unsigned)cp, at);
    int mrc = ldb_txn_begin(db, 0, &txn);
    if (mrc)
        return ldb_db_mdb_err(db, mrc, "cannot begin a transaction");
    uint8_t kb[6];
    ldb_key_latent(kb, dd->id, latent);
    MDB_val k = {6, kb}, v = {len, (void *)text};
    mrc = *text ? mdb_put(txn, db->labels, &k, &v, 0) : mdb_del(txn, db->labels, &k, NULL);
    if (mrc && mrc != MDB_NOTFOUND) {
        ldb_txn_abort(db, txn);
        return ldb_db_mdb_err(db, mrc, "labels");
    }
    return ldb_db_commit_mirrored(db, &txn, 0);
}
