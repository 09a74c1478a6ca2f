#ifndef WALSHIP_CZSTD_SHIM_H
#define WALSHIP_CZSTD_SHIM_H

#include <zstd.h>

#endif
