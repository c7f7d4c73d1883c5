#ifndef FEDBAECHI_COPENBLAS_H
#define FEDBAECHI_COPENBLAS_H
#include <cblas.h>
#endif
