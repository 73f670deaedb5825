// adjtimex(2) and struct timex, which the Glibc module leaves out.
#include <sys/timex.h>
