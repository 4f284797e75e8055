/* SPDX-License-Identifier: BSD-3-Clause */
/* consumer.c -- links an installed libvems found with find_package(vems) */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vems.h>

/*
 * Checks that the installed header and the library it loaded agree, and
 * makes one real call: creating and freeing a configuration.
 */
int
main(void)
{
	struct vems_config *cfg = NULL;
	char hdr[32];
	int rc;

	snprintf(hdr, sizeof(hdr), "%d.%d.%d", VEMS_VERSION_MAJOR,
		 VEMS_VERSION_MINOR, VEMS_VERSION_PATCH);
	printf("header %s, library %s\n", hdr, vems_version());
	if (strcmp(hdr, vems_version())) {
		fprintf(stderr, "consumer: header and library differ\n");
		return 1;
	}
	rc = vems_config_new(&cfg);
	if (rc) {
		fprintf(stderr, "consumer: vems_config_new: %s\n",
			vems_strerror(rc));
		return 1;
	}
	rc = vems_config_set_extent_size(cfg, 3); /* not a power of two */
	vems_config_delete(&cfg);
	if (rc == 0 || cfg) {
		fprintf(stderr, "consumer: configuration checks missing\n");
		return 1;
	}
	printf("consumer: ok\n");
	return EXIT_SUCCESS;
}
