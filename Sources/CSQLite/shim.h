#ifndef WALSHIP_CSQLITE_SHIM_H
#define WALSHIP_CSQLITE_SHIM_H

#include <sqlite3.h>

// sqlite3_db_config is variadic and does not import into Swift; these typed wrappers cover the
// options walship uses (the integer on/off options that take an `int*` for the new value).
static inline int walship_sqlite3_db_config_int(sqlite3 *db, int op, int value, int *out) {
    return sqlite3_db_config(db, op, value, out);
}

// SQLITE_TRANSIENT is a cast macro and does not import; Swift code uses this instead.
static inline sqlite3_destructor_type walship_sqlite3_transient(void) {
    return SQLITE_TRANSIENT;
}

#endif
