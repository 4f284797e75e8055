/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * iov.c -- vectored reads and writes: several buffers, one call, and for
 * a write one durability point
 *
 * A vector is as many consecutive vems_obj_pread / vems_obj_pwrite calls,
 * checked as a whole before any of them runs; a write's elements are
 * written without their fences and fenced once at the end, so the call
 * costs one barrier, not one per buffer.
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vems_internal.h"

/*
 * The vector's total in *total, or -EINVAL (nothing done) when it cannot
 * be one call: a bad count, a NULL buffer, more than SSIZE_MAX bytes, or
 * (writes) a range past the maximum object size.
 */
static int
iov_total(const char *fn, const struct iovec *iov, int iovcnt, uint64_t off,
	  bool write, size_t *total)
{
	if (iovcnt < 0 || iovcnt > IOV_MAX)
		return vems__fail(-EINVAL, "%s: iovcnt %d is not in 0..%d", fn,
				  iovcnt, IOV_MAX);
	if (iov == NULL && iovcnt > 0)
		return vems__fail(-EINVAL, "%s: iov is NULL", fn);
	size_t sum = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_base == NULL && iov[i].iov_len > 0)
			return vems__fail(
				-EINVAL, "%s: iov[%d].iov_base is NULL", fn, i);
		if (iov[i].iov_len > (size_t)SSIZE_MAX - sum)
			return vems__fail(-EINVAL,
					  "%s: the buffers add up to more than "
					  "SSIZE_MAX bytes",
					  fn);
		sum += iov[i].iov_len;
	}
	/* reading past the maximum is reading past the end (as pread) */
	if (off > VEMS_OBJ_MAX_SIZE || (write && sum > VEMS_OBJ_MAX_SIZE - off))
		return vems__fail(-EINVAL,
				  "%s: range %" PRIu64 "+%zu is past the "
				  "maximum object size %" PRIu64,
				  fn, off, sum, (uint64_t)VEMS_OBJ_MAX_SIZE);
	*total = sum;
	return 0;
}

ssize_t
vems_obj_preadv(struct vems_obj *obj, const struct iovec *iov, int iovcnt,
		uint64_t off)
{
	if (obj == NULL)
		return vems__fail(-EINVAL, "vems_obj_preadv: obj is NULL");
	size_t total;
	int ret = iov_total("vems_obj_preadv", iov, iovcnt, off, false, &total);
	if (ret)
		return ret;
	size_t done = 0;
	for (int i = 0; i < iovcnt && done < total; i++) {
		size_t len = iov[i].iov_len;
		if (len == 0)
			continue;
		ssize_t r =
			vems_obj_pread(obj, iov[i].iov_base, len, off + done);
		if (r < 0)
			return done > 0 ? (ssize_t)done : r;
		done += (size_t)r;
		if ((size_t)r < len)
			break; /* the end of the object */
	}
	return (ssize_t)done;
}

ssize_t
vems_obj_pwritev(struct vems_obj *obj, const struct iovec *iov, int iovcnt,
		 uint64_t off, unsigned flags)
{
	if (obj == NULL)
		return vems__fail(-EINVAL, "vems_obj_pwritev: obj is NULL");
	if (flags & ~VEMS_W_NODRAIN)
		return vems__fail(-EINVAL,
				  "vems_obj_pwritev: unknown flags %#x", flags);
	if (obj->flags & VEMS_O_RDONLY)
		return vems__fail(-EBADF, "object handle is read-only");
	size_t total;
	int ret = iov_total("vems_obj_pwritev", iov, iovcnt, off, true, &total);
	if (ret)
		return ret;
	size_t done = 0;
	ssize_t err = 0;
	for (int i = 0; i < iovcnt; i++) {
		size_t len = iov[i].iov_len;
		if (len == 0)
			continue;
		ssize_t w = vems_obj_pwrite(obj, iov[i].iov_base, len,
					    off + done, flags | VEMS_W_NODRAIN);
		if (w < 0) {
			err = w;
			break;
		}
		done += (size_t)w;
		if ((size_t)w < len)
			break; /* published in part (see vems_obj_pwrite) */
	}
	/*
	 * One barrier for the elements written, also before a short count
	 * is returned: what the count says was written is durable. If the
	 * barrier fails nothing is acknowledged.
	 */
	if (done > 0 && !(flags & VEMS_W_NODRAIN) &&
	    !(obj->flags & VEMS_O_NODRAIN) && (ret = vems_obj_persist(obj)))
		return ret;
	return done > 0 ? (ssize_t)done : err;
}
