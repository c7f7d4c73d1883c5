#ifndef FEDBAECHI_CZLIB_H
#define FEDBAECHI_CZLIB_H
#include <zlib.h>
#endif
