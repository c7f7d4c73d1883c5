#ifndef FEDBAECHI_CCLP_H
#define FEDBAECHI_CCLP_H
#include <Clp_C_Interface.h>
#endif
