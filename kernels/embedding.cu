// kernels/embedding.cu: placeholder until the kernel lands.
#include "kernels/embedding.h"
