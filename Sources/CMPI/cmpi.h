// The only header in fedbaechi that includes <mpi.h>.
//
// Open MPI spells its predefined handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM,
// MPI_IN_PLACE, ...) as macros over pointer casts, which Swift cannot import.
// Each one is exposed here as a static inline getter with a `cmpi_` prefix.
// Integer constants (MPI_SUCCESS, MPI_ANY_SOURCE, ...) import as they are.
#ifndef FEDBAECHI_CMPI_H
#define FEDBAECHI_CMPI_H

#include <mpi.h>

// Communicators and groups.
static inline MPI_Comm cmpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm cmpi_comm_self(void) { return MPI_COMM_SELF; }
static inline MPI_Comm cmpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Group cmpi_group_null(void) { return MPI_GROUP_NULL; }
static inline MPI_Request cmpi_request_null(void) { return MPI_REQUEST_NULL; }

// Data types for the element types the Swift layer sends.
static inline MPI_Datatype cmpi_type_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype cmpi_type_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype cmpi_type_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype cmpi_type_int32(void) { return MPI_INT32_T; }
static inline MPI_Datatype cmpi_type_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype cmpi_type_uint64(void) { return MPI_UINT64_T; }

// Reduction operations.
static inline MPI_Op cmpi_op_sum(void) { return MPI_SUM; }
static inline MPI_Op cmpi_op_max(void) { return MPI_MAX; }
static inline MPI_Op cmpi_op_min(void) { return MPI_MIN; }

// Error handling: errors return codes instead of aborting, so Swift can throw.
static inline MPI_Errhandler cmpi_errors_return(void) { return MPI_ERRORS_RETURN; }

// The error class of a failed peer process (MPI 5 and ULFM; MPICH as MPIX_), or -1 where the
// library has none.
static inline int cmpi_err_proc_failed(void) {
#if defined(MPI_ERR_PROC_FAILED)
    return MPI_ERR_PROC_FAILED;
#elif defined(MPIX_ERR_PROC_FAILED)
    return MPIX_ERR_PROC_FAILED;
#else
    return -1;
#endif
}

// Sentinels.
static inline void *cmpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Status *cmpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Status *cmpi_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }

// Status fields, whose names differ between MPI implementations.
static inline int cmpi_status_source(const MPI_Status *s) { return s->MPI_SOURCE; }
static inline int cmpi_status_tag(const MPI_Status *s) { return s->MPI_TAG; }
static inline int cmpi_status_error(const MPI_Status *s) { return s->MPI_ERROR; }

// Which MPI library this is, for `fedbaechi doctor`.
static inline const char *cmpi_implementation_name(void) {
#if defined(OPEN_MPI)
    return "Open MPI";
#elif defined(MPICH_VERSION)
    return "MPICH";
#else
    return "unknown MPI";
#endif
}

#endif
