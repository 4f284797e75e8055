/* SPDX-License-Identifier: BSD-3-Clause */
/* errormsg.c -- error codes, their static text, and per-thread detail */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vems_internal.h"

#define MSG_MAX 1024

static _Thread_local char msg[MSG_MAX];

int
vems__fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return code;
}

void
vems__errmsg_append(const char *fmt, ...)
{
	size_t used = strnlen(msg, sizeof(msg));
	if (used + 3 >= sizeof(msg))
		return;
	msg[used++] = ':';
	msg[used++] = ' ';
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg + used, sizeof(msg) - used, fmt, ap);
	va_end(ap);
}

const char *
vems_errormsg(void)
{
	return msg;
}

const char *
vems_strerror(int code)
{
	static _Thread_local char buf[128];

	switch (code) {
	case 0:
		return "success";
	case VEMS_E_NOTPOOL:
		return "not a libvems pool";
	case VEMS_E_VERSION:
		return "pool format version not supported";
	case VEMS_E_CORRUPT:
		return "pool metadata is corrupt";
	case VEMS_E_MISMATCH:
		return "block file does not belong to this pool";
	case VEMS_E_CHECKSUM:
		return "block data failed its checksum";
	default:
		break;
	}
	if (code < 0 && code > VEMS_E_BASE)
		return strerror_r(-code, buf, sizeof(buf));
	snprintf(buf, sizeof(buf), "unknown libvems error %d", code);
	return buf;
}
