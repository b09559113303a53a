// Open MPI's C API. MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE and friends are
// macros Swift does not import; these inline functions hand them over.
#include <mpi.h>

static inline MPI_Comm lstm_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype lstm_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype lstm_mpi_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Op lstm_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op lstm_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op lstm_mpi_min(void) { return MPI_MIN; }
static inline void *lstm_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler lstm_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int lstm_mpi_success(void) { return MPI_SUCCESS; }
static inline int lstm_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
