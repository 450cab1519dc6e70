// OpenBLAS's CBLAS interface plus its thread-count controls.
#include <cblas.h>

// LAPACK's symmetric eigensolver (divide and conquer), Fortran calling convention, from the LAPACK that OpenBLAS
// ships (no LAPACKE header is installed). Every argument by pointer; the one-character options carry no hidden
// length argument here, which gfortran tolerates for length-1 strings.
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info);
