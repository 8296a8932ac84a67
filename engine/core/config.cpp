// engine/core/config.cpp: placeholder.
#include "engine/core/config.h"
