// Fixture for the layering check: a lower library that includes a higher one's header.
#pragma once
#include "high/high.h"
