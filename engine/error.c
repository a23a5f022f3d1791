/* The OL_ERROR quark. */
#include "error.h"

G_DEFINE_QUARK (ol-error-quark, ol_error)
