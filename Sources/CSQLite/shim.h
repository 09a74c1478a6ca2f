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

// Reads the main database file through the connection's own file handle
// (SQLITE_FCNTL_FILE_POINTER, then xRead), as DESIGN.md section 3 requires: walship never opens a
// descriptor of its own on the database (closing it would drop the process's locks). The caller
// holds a read transaction, which keeps a checkpoint from changing the file under the read.
// Returns SQLITE_IOERR_SHORT_READ (with the rest zero-filled) past the end of the file.
static inline int walship_sqlite3_read_main_file(sqlite3 *db, void *buffer, int amount, sqlite3_int64 offset) {
    sqlite3_file *file = 0;
    int rc = sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &file);
    if (rc != SQLITE_OK) return rc;
    if (file == 0 || file->pMethods == 0) return SQLITE_MISUSE;
    return file->pMethods->xRead(file, buffer, amount, offset);
}

// The size of the main database file, through the connection's own file handle.
static inline int walship_sqlite3_main_file_size(sqlite3 *db, sqlite3_int64 *size) {
    sqlite3_file *file = 0;
    int rc = sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &file);
    if (rc != SQLITE_OK) return rc;
    if (file == 0 || file->pMethods == 0) return SQLITE_MISUSE;
    return file->pMethods->xFileSize(file, size);
}

#endif
