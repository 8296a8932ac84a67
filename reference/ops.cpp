// reference/ops.cpp: placeholder.
#include "reference/ops.h"
