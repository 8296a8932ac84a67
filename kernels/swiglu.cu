// kernels/swiglu.cu: placeholder until the kernel lands.
#include "kernels/swiglu.h"
