// Open MPI for Swift. Open MPI defines its predefined handles as macros over the addresses of
// global objects, which Swift cannot import; each getter below re-exports one under its C name.
#ifndef DTRAIN_CMPI_H
#define DTRAIN_CMPI_H
#include <mpi.h>

#define DTRAIN_MPI_HANDLE(T, NAME) \
    static inline T dtrain_##NAME(void) __attribute__((swift_name("getter:" #NAME "()"))); \
    static inline T dtrain_##NAME(void) { return NAME; }

DTRAIN_MPI_HANDLE(MPI_Comm, MPI_COMM_WORLD)
DTRAIN_MPI_HANDLE(MPI_Comm, MPI_COMM_NULL)
DTRAIN_MPI_HANDLE(MPI_Datatype, MPI_FLOAT)
DTRAIN_MPI_HANDLE(MPI_Datatype, MPI_DOUBLE)
DTRAIN_MPI_HANDLE(MPI_Datatype, MPI_INT)
DTRAIN_MPI_HANDLE(MPI_Datatype, MPI_CHAR)
DTRAIN_MPI_HANDLE(MPI_Datatype, MPI_BYTE)
DTRAIN_MPI_HANDLE(MPI_Op, MPI_SUM)
DTRAIN_MPI_HANDLE(MPI_Op, MPI_MAX)
DTRAIN_MPI_HANDLE(MPI_Op, MPI_MIN)
DTRAIN_MPI_HANDLE(MPI_Errhandler, MPI_ERRORS_RETURN)
DTRAIN_MPI_HANDLE(MPI_Request, MPI_REQUEST_NULL)

/// MPI_IN_PLACE is ((void *) 1): a sentinel address, never dereferenced.
static inline void *dtrain_MPI_IN_PLACE(void) __attribute__((swift_name("getter:MPI_IN_PLACE()")));
static inline void *dtrain_MPI_IN_PLACE(void) { return MPI_IN_PLACE; }

/// MPI_STATUS_IGNORE is a null MPI_Status pointer.
static inline MPI_Status *dtrain_MPI_STATUS_IGNORE(void) __attribute__((swift_name("getter:MPI_STATUS_IGNORE()")));
static inline MPI_Status *dtrain_MPI_STATUS_IGNORE(void) { return MPI_STATUS_IGNORE; }

#endif
