#include "testing/fault_store.h"
