/* SPDX-License-Identifier: BSD-3-Clause */
/* version.c -- the library's version string */

#include "vems_internal.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const char *
vems_version(void)
{
	return STR(VEMS_VERSION_MAJOR) "." STR(VEMS_VERSION_MINOR) "." STR(
		VEMS_VERSION_PATCH);
}
