#ifndef WALSHIP_CZLIB_SHIM_H
#define WALSHIP_CZLIB_SHIM_H

#include <zlib.h>

// deflateInit2 and inflateInit2 are function-like macros that do not import into Swift; these
// wrappers pass ZLIB_VERSION and the struct size exactly as the macros do.
static inline int walship_deflateInit2(z_streamp strm, int level, int method, int windowBits,
                                       int memLevel, int strategy) {
    return deflateInit2_(strm, level, method, windowBits, memLevel, strategy, ZLIB_VERSION,
                         (int)sizeof(z_stream));
}

static inline int walship_inflateInit2(z_streamp strm, int windowBits) {
    return inflateInit2_(strm, windowBits, ZLIB_VERSION, (int)sizeof(z_stream));
}

#endif
