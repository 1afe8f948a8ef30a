#include "store/outbox.h"
