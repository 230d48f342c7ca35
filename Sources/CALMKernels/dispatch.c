#include "calm_kernels.h"
