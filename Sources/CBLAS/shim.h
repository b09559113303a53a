// OpenBLAS's CBLAS interface and its thread-pool controls.
#include <cblas.h>
