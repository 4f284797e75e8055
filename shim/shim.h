/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * shim.h -- what the parts of libvems_preload.so share (see shim/preload.c
 * for the design, README.md "The LD_PRELOAD shim" for its use).
 */
#ifndef VEMS_SHIM_H
#define VEMS_SHIM_H 1

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Whether the shim serves anything (VEMS_POOL and VEMS_PREFIX set). */
extern bool shim_active;

/* Whether fd is a vems file descriptor. */
bool shim_is_vems_fd(int fd);

/* Opens path with the shim's open (a vems path or a real one). */
int shim_open(const char *path, int flags, mode_t mode);

/* Whether path names something under the prefix. */
bool shim_is_vems_path(const char *path);

/* The shim's read/write/lseek/close on a vems fd. */
ssize_t shim_read(int fd, void *buf, size_t len);
ssize_t shim_write(int fd, const void *buf, size_t len);
off_t shim_lseek(int fd, off_t off, int whence);
int shim_close(int fd);

/* Counters (VEMS_SHIM_STATS) and the debug log (VEMS_SHIM_DEBUG). */
void shim_count(const char *call, bool vems);
void shim_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* VEMS_SHIM_H */
