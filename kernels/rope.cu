// kernels/rope.cu: placeholder until the kernel lands.
#include "kernels/rope.h"
